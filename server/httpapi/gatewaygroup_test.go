package httpapi

import (
	"testing"

	"github.com/pamd/pamd/store"
)

// TestEnrolledGroupIsTheTokens: enrolling puts the gateway in its token's
// group; a --replace token sets it again (to none when it names none).
func TestEnrolledGroupIsTheTokens(t *testing.T) {
	for _, c := range []struct{ had, token, want, detail string }{
		{"", "dc1", "dc1", "into group dc1"},
		{"dc1", "dc1", "dc1", "group dc1"},
		{"dc1", "dc2", "dc2", "group dc1 -> dc2"},
		{"dc1", "", "", "out of group dc1"},
		{"", "", "", ""},
	} {
		g := &store.Gateway{Name: "gw", Group: c.had}
		detail := enrolledGroup(&store.EnrollToken{Group: c.token, Replace: c.had != ""}, g)
		if g.Group != c.want || detail != c.detail {
			t.Errorf("in %q, token for %q: in %q (%q), want %q (%q)", c.had, c.token, g.Group, detail, c.want, c.detail)
		}
	}
}
