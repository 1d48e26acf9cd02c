package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

// Outcome is what a login or a sync changed.
type Outcome struct {
	User    *store.User
	Created bool
	Added   []string // roles
	Removed []string
	// MFAAt is the provider's MFA time a token of this login carries (zero:
	// none that counts).
	MFAAt time.Time
	// Revoked is how many tokens a lost role ended.
	Revoked int
}

// mfaMethods are the amr values (RFC 8176) that show a second factor.
var mfaMethods = []string{"mfa", "mca", "otp", "hwk", "sc", "sms", "fido"}

// Login makes the pamd user of id: the one linked to its subject, or a new
// one named from its claims; its roles are the default role and those its
// groups map to, as of now. A disabled user stays out whatever the
// provider says. Everything is audited, failures with their reason.
func (s *Service) Login(id *Identity, source string) (*Outcome, error) {
	out, err := s.login(id, source)
	if err != nil {
		var le *LoginError
		actor := "sso:" + audit.Name(firstOr(id.Names, "unknown"))
		if errors.As(err, &le) {
			s.trail.Event(actor, "sso.login", "", "failure", source, le.Msg)
		}
	}
	return out, err
}

func (s *Service) login(id *Identity, source string) (*Outcome, error) {
	now := time.Now().UTC()
	out := &Outcome{}
	var refusal error
	err := s.st.Update(func(tx *store.Tx) error {
		c, err := tx.SSOConfig()
		if errors.Is(err, store.ErrNotFound) {
			return ErrOff
		}
		if err != nil {
			return err
		}
		u, err := tx.UserBySSO(id.Issuer, id.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if u, refusal = newUser(tx, id); refusal != nil {
				return nil
			}
			out.Created = true
		case err != nil:
			return err
		}
		if u.Disabled {
			refusal = refused("user %s is disabled in pamd", u.Name)
			return nil
		}
		roles, unknown, err := rolesFor(tx, c, id.Groups)
		if err != nil {
			return err
		}
		if len(roles) == 0 {
			refusal = refused("none of your groups (%s) maps to a pamd role, and no default role is set: ask an admin", strings.Join(groupNames(id.Groups), ", "))
			return nil
		}
		out.Added, out.Removed = diff(u.Roles, roles)
		if out.Created {
			out.Added = nil
		}
		u.Roles, u.SSOGroups, u.SSOLoginAt = roles, id.Groups, now
		if c.RequireMFAClaim && hasMFA(id.AMR) && !id.AuthTime.IsZero() {
			out.MFAAt = id.AuthTime
		}
		actor := "sso:" + u.Name
		if out.Created {
			if err := tx.CreateSSOUser(u); err != nil {
				return err
			}
			detail := fmt.Sprintf("first SSO login from %s; roles: %s", id.Issuer, strings.Join(roles, ","))
			if err := audit.Append(tx, actor, "user.create", u.Name, "success", source, detail); err != nil {
				return err
			}
		} else if err := tx.PutUser(u); err != nil {
			return err
		}
		if len(out.Added)+len(out.Removed) > 0 {
			if len(out.Removed) > 0 {
				// Tokens issued under the lost roles end; the one this login
				// gets is issued after.
				if out.Revoked, err = auth.RevokeTokens(tx, u.ID, ""); err != nil {
					return err
				}
			}
			if err := audit.Append(tx, actor, "user.update", u.Name, "success", source, roleChange(out.Added, out.Removed, out.Revoked, "groups at SSO login")); err != nil {
				return err
			}
		}
		detail := "groups: " + strings.Join(groupNames(id.Groups), ",")
		if len(unknown) > 0 {
			detail += "; mapped roles that do not exist: " + strings.Join(unknown, ",")
		}
		if !out.MFAAt.IsZero() {
			detail += "; MFA at the provider " + out.MFAAt.Format(time.RFC3339)
		}
		out.User = u
		return audit.Append(tx, u.Name, "sso.login", id.Issuer, "success", source, detail)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return out, nil
}

// newUser is a new SSO user for id, named by its first name that is a
// valid pamd name and not taken: a local user (the break-glass admin)
// is never taken over by an identity of the same name.
func newUser(tx *store.Tx, id *Identity) (*store.User, error) {
	if len(id.Names) == 0 {
		return nil, refused("the SSO provider's ID token has no preferred_username or email that is a valid pamd user name (letters, digits, '-', '_', '.')")
	}
	name := id.Names[0]
	if _, err := tx.UserByName(name); err == nil {
		return nil, refused("user name %s is taken by another pamd user: an admin must rename or remove it first", name)
	}
	return &store.User{ID: store.NewID(), Name: name, SSOIssuer: id.Issuer, SSOSubject: id.Subject, CreatedAt: time.Now().UTC()}, nil
}

// rolesFor is the default role and the roles groups map to, in the
// mapping's order; unknown are mapped roles pamd does not have.
func rolesFor(tx *store.Tx, c *store.SSOConfig, groups []string) (roles, unknown []string, err error) {
	add := func(role string) error {
		if slices.Contains(roles, role) || slices.Contains(unknown, role) {
			return nil
		}
		_, err := tx.RoleByName(role)
		switch {
		case errors.Is(err, store.ErrNotFound):
			unknown = append(unknown, role)
			return nil
		case err != nil:
			return err
		}
		roles = append(roles, role)
		return nil
	}
	if c.DefaultRole != "" {
		if err := add(c.DefaultRole); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range c.Map {
		if slices.Contains(groups, m.Group) {
			if err := add(m.Role); err != nil {
				return nil, nil, err
			}
		}
	}
	return roles, unknown, nil
}

// Sync re-applies the mapping to the groups of u's last login and ends
// u's tokens, so the next login asks the provider again. The caller ends
// the sessions.
func (s *Service) Sync(tx *store.Tx, u *store.User, actor, source string) (*Outcome, error) {
	if !u.IsSSO() {
		return nil, api.Errorf(http.StatusBadRequest, "%s is a local user: only SSO users are synced", u.Name)
	}
	out := &Outcome{User: u}
	c, err := tx.SSOConfig()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if c != nil {
		roles, _, err := rolesFor(tx, c, u.SSOGroups)
		if err != nil {
			return nil, err
		}
		if len(roles) == 0 {
			roles = []string{"user"} // the base role, which grants nothing
		}
		out.Added, out.Removed = diff(u.Roles, roles)
		u.Roles = roles
		if err := tx.PutUser(u); err != nil {
			return nil, err
		}
	}
	if out.Revoked, err = auth.RevokeTokens(tx, u.ID, ""); err != nil {
		return nil, err
	}
	return out, audit.Append(tx, actor, "user.sync", u.Name, "success", source, roleChange(out.Added, out.Removed, out.Revoked, "mapping re-applied to the last login's groups; next use needs an SSO login"))
}

// MFAFresh says whether a provider MFA at mfaAt still stands for a TOTP
// code: the settings ask for it and it is younger than their max age.
func (s *Service) MFAFresh(mfaAt time.Time) bool {
	if mfaAt.IsZero() {
		return false
	}
	c, err := s.Settings()
	if err != nil || !c.RequireMFAClaim {
		return false
	}
	return time.Since(mfaAt) <= c.MFAMaxAge
}

// MFAMaxAge is how old a provider MFA may be (the default when SSO is off).
func (s *Service) MFAMaxAge() time.Duration {
	if c, err := s.Settings(); err == nil {
		return c.MFAMaxAge
	}
	return DefaultMFAMaxAge
}

func hasMFA(amr []string) bool {
	for _, m := range amr {
		if slices.Contains(mfaMethods, strings.ToLower(m)) {
			return true
		}
	}
	return false
}

func diff(old, next []string) (added, removed []string) {
	for _, r := range next {
		if !slices.Contains(old, r) {
			added = append(added, r)
		}
	}
	for _, r := range old {
		if !slices.Contains(next, r) {
			removed = append(removed, r)
		}
	}
	return added, removed
}

func roleChange(added, removed []string, revoked int, why string) string {
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "roles added: "+strings.Join(added, ","))
	}
	if len(removed) > 0 {
		parts = append(parts, "roles removed: "+strings.Join(removed, ","))
	}
	parts = append(parts, fmt.Sprintf("%d tokens revoked", revoked), why)
	return strings.Join(parts, "; ")
}

// groupNames is groups fit for the audit log.
func groupNames(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, printableText(g, 64))
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func firstOr(names []string, def string) string {
	if len(names) > 0 {
		return names[0]
	}
	return def
}

// Complete finishes a login that came back from the provider and makes
// its pamd user; a refused login is audited with the provider's or the
// check's reason.
func (s *Service) Complete(ctx context.Context, req FinishRequest, source string) (*Outcome, error) {
	id, err := s.Finish(ctx, req)
	if err != nil {
		s.trail.Event("sso:unknown", "sso.login", "", "failure", source, err.Error())
		return nil, apiError(err)
	}
	out, err := s.Login(id, source)
	return out, apiError(err)
}
