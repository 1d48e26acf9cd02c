package sessions

import (
	"errors"
	"path"
	"slices"
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
	// Request is the approved access request the grant comes from (nil: a
	// standing role grant); MaxDuration then ends with its grant.
	Request *store.Request
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

// Defaults of roles' request patterns.
const (
	DefaultRequestTTL      = 24 * time.Hour // a request waits that long for approvals
	DefaultRequestDuration = time.Hour      // a grant lasts that long unless asked otherwise
	DefaultApprover        = "admin"        // the approver role of a role that names none
)

// Requestable is what a role's request patterns offer for one
// resource/account: who approves, how many of them, the longest grant, how
// long a request waits, and whether it needs a reason.
type Requestable struct {
	Role          string
	Approvers     []string
	Approvals     int
	MaxDuration   time.Duration
	TTL           time.Duration
	RequireReason bool
}

// RequestableFor is the request the roles let a user make for
// resource/account. When several roles' request patterns match, the one
// asking the fewest approvals wins, then the longest grant, then the first
// name; ok is false when none matches.
func RequestableFor(roles []*store.Role, resource, account string) (q Requestable, ok bool) {
	for _, r := range roles {
		if !slices.ContainsFunc(r.Request, func(p string) bool { return matches(p, resource, account) }) {
			continue
		}
		c := Requestable{Role: r.Name, Approvers: r.Approvers, Approvals: max(r.Approvals, 1), MaxDuration: r.MaxDuration,
			TTL: r.RequestTTL, RequireReason: r.RequireReason}
		if len(c.Approvers) == 0 {
			c.Approvers = []string{DefaultApprover}
		}
		if c.MaxDuration <= 0 {
			c.MaxDuration = DefaultMaxDuration
		}
		if c.TTL <= 0 {
			c.TTL = DefaultRequestTTL
		}
		if !ok || better(c, q) {
			q, ok = c, true
		}
	}
	return q, ok
}

func better(a, b Requestable) bool {
	if a.Approvals != b.Approvals {
		return a.Approvals < b.Approvals
	}
	if a.MaxDuration != b.MaxDuration {
		return a.MaxDuration > b.MaxDuration
	}
	return a.Role < b.Role
}

// StillGranted says whether the roles still grant a live session: by a
// standing pattern, or, for one opened under an access request, by the
// request patterns that let the user ask for it.
func StillGranted(roles []*store.Role, s *store.Session) bool {
	if s.RequestID != "" {
		_, ok := RequestableFor(roles, s.ResourceName, s.AccountName)
		return ok
	}
	_, ok := GrantFor(roles, s.ResourceName, s.AccountName)
	return ok
}
