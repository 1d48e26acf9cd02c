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

func TestRequestableFor(t *testing.T) {
	oncall := &store.Role{Name: "oncall", Request: []string{"prod-*/*"}, Approvers: []string{"leads"}, Approvals: 2, MaxDuration: time.Hour}
	quick := &store.Role{Name: "quick", Request: []string{"prod-db/readonly"}, MaxDuration: 30 * time.Minute, RequestTTL: time.Minute, RequireReason: true}
	standing := &store.Role{Name: "standing", Allow: []string{"prod-*/*"}}
	if _, ok := RequestableFor([]*store.Role{standing}, "prod-db", "readonly"); ok {
		t.Fatal("a standing pattern made a request pattern")
	}
	if _, ok := GrantFor([]*store.Role{oncall}, "prod-db", "readonly"); ok {
		t.Fatal("a request pattern granted standing access")
	}
	q, ok := RequestableFor([]*store.Role{oncall}, "prod-web", "root")
	if !ok || q.Role != "oncall" || q.Approvals != 2 || q.MaxDuration != time.Hour || q.TTL != DefaultRequestTTL || len(q.Approvers) != 1 || q.Approvers[0] != "leads" {
		t.Fatalf("oncall: %+v %v", q, ok)
	}
	// Two roles match: the one asking fewer approvals wins, with its
	// defaults (admin approves, one approval).
	q, ok = RequestableFor([]*store.Role{oncall, quick}, "prod-db", "readonly")
	if !ok || q.Role != "quick" || q.Approvals != 1 || q.Approvers[0] != DefaultApprover || q.TTL != time.Minute || !q.RequireReason {
		t.Fatalf("oncall+quick: %+v %v", q, ok)
	}
	if _, ok := RequestableFor([]*store.Role{oncall, quick}, "dev-db", "readonly"); ok {
		t.Fatal("dev-db matched prod-*")
	}
	// A session under a request stays granted while the user may still
	// request it; a standing one while a standing pattern allows it.
	viaRequest := &store.Session{ResourceName: "prod-db", AccountName: "root", RequestID: "r1"}
	if !StillGranted([]*store.Role{oncall}, viaRequest) || StillGranted([]*store.Role{standing}, viaRequest) {
		t.Fatal("StillGranted of a session under a request")
	}
	plain := &store.Session{ResourceName: "prod-db", AccountName: "root"}
	if StillGranted([]*store.Role{oncall}, plain) || !StillGranted([]*store.Role{standing}, plain) {
		t.Fatal("StillGranted of a standing session")
	}
}
