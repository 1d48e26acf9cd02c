package server

import (
	"errors"
	"path"
	"strings"
	"time"

	"github.com/pamd/pamd/store"
)

// defaultMaxDuration caps sessions for roles that set no maximum.
const defaultMaxDuration = 8 * time.Hour

// grant is what a user's roles allow for one resource/account.
type grant struct {
	maxDuration   time.Duration
	requireReason bool
}

// validPattern checks a RESOURCE_GLOB/ACCOUNT_GLOB pattern.
func validPattern(p string) error {
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

// grantFor returns the union of the roles that allow resource/account: the
// longest maximum of them, and a reason required if any matching role wants
// one. ok is false when no role allows it (deny by default).
func grantFor(roles []*store.Role, resource, account string) (g grant, ok bool) {
	for _, r := range roles {
		for _, p := range r.Allow {
			if !matches(p, resource, account) {
				continue
			}
			ok = true
			max := r.MaxDuration
			if max <= 0 {
				max = defaultMaxDuration
			}
			if max > g.maxDuration {
				g.maxDuration = max
			}
			g.requireReason = g.requireReason || r.RequireReason
			break
		}
	}
	return g, ok
}
