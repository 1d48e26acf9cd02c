package sessions

import (
	"errors"
	"path"
	"strings"
	"time"

	"github.com/pamd/pamd/store"
)

// DefaultMaxDuration caps sessions for roles that set no maximum.
const DefaultMaxDuration = 8 * time.Hour

// Grant is what a user's roles allow for one resource/account.
type Grant struct {
	MaxDuration   time.Duration
	RequireReason bool
}

// ValidPattern checks a RESOURCE_GLOB/ACCOUNT_GLOB pattern.
func ValidPattern(p string) error {
	res, acct, ok := strings.Cut(p, "/")
	if !ok || res == "" || acct == "" {
		return errors.New("want RESOURCE_GLOB/ACCOUNT_GLOB, for example 'prod-*/readonly'")
	}
	if _, err := path.Match(res, ""); err != nil {
		return err
	}
	_, err := path.Match(acct, "")
	return err
}

func matches(pattern, resource, account string) bool {
	res, acct, ok := strings.Cut(pattern, "/")
	if !ok {
		return false
	}
	m1, _ := path.Match(res, resource)
	m2, _ := path.Match(acct, account)
	return m1 && m2
}

// GrantFor returns the union of the roles that allow resource/account: the
// longest maximum of them, and a reason required if any matching role wants
// one. ok is false when no role allows it (deny by default).
func GrantFor(roles []*store.Role, resource, account string) (g Grant, ok bool) {
	for _, r := range roles {
		for _, p := range r.Allow {
			if !matches(p, resource, account) {
				continue
			}
			ok = true
			max := r.MaxDuration
			if max <= 0 {
				max = DefaultMaxDuration
			}
			if max > g.MaxDuration {
				g.MaxDuration = max
			}
			g.RequireReason = g.RequireReason || r.RequireReason
			break
		}
	}
	return g, ok
}
