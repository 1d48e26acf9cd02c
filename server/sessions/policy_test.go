package sessions

import (
	"testing"
	"time"

	"github.com/pamd/pamd/store"
)

func TestGrantFor(t *testing.T) {
	readers := &store.Role{Name: "readers", Allow: []string{"prod-*/readonly"}, MaxDuration: 30 * time.Minute, RequireReason: true}
	ops := &store.Role{Name: "ops", Allow: []string{"prod-db/*", "staging-*/*"}, MaxDuration: 4 * time.Hour}
	admin := &store.Role{Name: "admin", Allow: []string{"*/*"}}
	tests := []struct {
		roles         []*store.Role
		res, acct     string
		ok            bool
		max           time.Duration
		requireReason bool
	}{
		{nil, "prod-db", "readonly", false, 0, false},
		{[]*store.Role{readers}, "prod-db", "readonly", true, 30 * time.Minute, true},
		{[]*store.Role{readers}, "prod-db", "admin", false, 0, false},
		{[]*store.Role{readers}, "dev-db", "readonly", false, 0, false},
		{[]*store.Role{readers, ops}, "prod-db", "readonly", true, 4 * time.Hour, true},
		{[]*store.Role{ops}, "staging-web", "root", true, 4 * time.Hour, false},
		{[]*store.Role{admin}, "anything", "at-all", true, DefaultMaxDuration, false},
	}
	for _, tt := range tests {
		g, ok := GrantFor(tt.roles, tt.res, tt.acct)
		if ok != tt.ok || g.MaxDuration != tt.max || g.RequireReason != tt.requireReason {
			t.Errorf("GrantFor(%s/%s) = %+v %v, want max %s reason %v ok %v", tt.res, tt.acct, g, ok, tt.max, tt.requireReason, tt.ok)
		}
	}
	for _, bad := range []string{"", "noslash", "/acct", "res/", "[/x"} {
		if ValidPattern(bad) == nil {
			t.Errorf("ValidPattern(%q) accepted", bad)
		}
	}
}
