package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

// Lifecycles of users and roles. Whatever takes access away takes effect
// at once: the live sessions the changed roles no longer grant end, in the
// same request. What gives access takes effect from the next session.

// handleUpdateUser adds and removes a user's roles. A removal ends the
// user's API tokens (but the caller's own) and their live sessions that
// the remaining roles do not grant.
func (s *API) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	var req api.UserUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.AddRoles)+len(req.RemoveRoles) == 0 {
		return api.Errorf(http.StatusBadRequest, "nothing to change: name roles to add or remove")
	}
	for _, role := range req.AddRoles {
		if slices.Contains(req.RemoveRoles, role) {
			return api.Errorf(http.StatusBadRequest, "role %s is both added and removed", role)
		}
	}
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var (
		u       *store.User
		lost    []string
		revoked int
		ended   []string
	)
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if u, err = tx.UserByName(name); err != nil {
			return err
		}
		if slices.Contains(req.RemoveRoles, "admin") && slices.Contains(u.Roles, "admin") {
			if err := refuseLastAdmin(tx, u, "the last admin cannot lose the admin role"); err != nil {
				return err
			}
		}
		roles, added, removed, err := editRoles(tx, u, req)
		if err != nil {
			return err
		}
		u.Roles, lost = roles, removed
		if err := tx.PutUser(u); err != nil {
			return err
		}
		if len(lost) > 0 {
			if revoked, err = auth.RevokeTokens(tx, u.ID, c.TokenHash); err != nil {
				return err
			}
			if ended, err = ungranted(tx, u.ID); err != nil {
				return err
			}
		}
		return audit.Append(tx, c.User.Name, "user.update", name, "success", c.Source, rolesDetail(added, removed, revoked))
	})
	if err != nil {
		return err
	}
	n := s.endSessions(r.Context(), ended, "role "+strings.Join(lost, ", ")+" removed by "+c.User.Name, c.User.Name)
	writeJSON(w, http.StatusOK, api.UserChange{User: userView(u), TokensRevoked: revoked, SessionsEnded: n})
	return nil
}

// editRoles is u's roles with req applied, and the roles it adds and
// removes. Every role named must exist, but a role u holds can be removed
// even when it no longer does.
func editRoles(tx *store.Tx, u *store.User, req api.UserUpdate) (roles, added, removed []string, err error) {
	roles = slices.Clone(u.Roles)
	for _, role := range req.AddRoles {
		if _, err := tx.RoleByName(role); err != nil {
			return nil, nil, nil, api.Errorf(http.StatusBadRequest, "no role named %q (see pamd roles list)", role)
		}
		if !slices.Contains(roles, role) {
			roles, added = append(roles, role), append(added, role)
		}
	}
	for _, role := range req.RemoveRoles {
		if !slices.Contains(roles, role) {
			if _, err := tx.RoleByName(role); err != nil {
				return nil, nil, nil, api.Errorf(http.StatusBadRequest, "no role named %q (see pamd roles list)", role)
			}
			return nil, nil, nil, api.Errorf(http.StatusBadRequest, "%s does not have role %s (roles: %s)", u.Name, role, strings.Join(u.Roles, ", "))
		}
		roles = slices.DeleteFunc(roles, func(r string) bool { return r == role })
		removed = append(removed, role)
	}
	switch {
	case len(added)+len(removed) == 0:
		return nil, nil, nil, api.Errorf(http.StatusBadRequest, "nothing to change: %s already has roles %s", u.Name, strings.Join(u.Roles, ", "))
	case len(roles) == 0:
		return nil, nil, nil, api.Errorf(http.StatusBadRequest, "%s would have no role left: keep or add one (user is the base role)", u.Name)
	}
	return roles, added, removed, nil
}

// rolesDetail is the audit detail of a change of roles.
func rolesDetail(added, removed []string, revoked int) string {
	var parts []string
	for _, r := range added {
		parts = append(parts, "+"+r)
	}
	for _, r := range removed {
		parts = append(parts, "-"+r)
	}
	detail := "roles " + strings.Join(parts, " ")
	if len(removed) > 0 {
		detail += fmt.Sprintf("; %d tokens revoked", revoked)
	}
	return detail
}

// refuseLastAdmin refuses a change that would leave no enabled admin but
// u; why says what was refused.
func refuseLastAdmin(tx *store.Tx, u *store.User, why string) error {
	users, err := tx.Users()
	if err != nil {
		return err
	}
	for _, other := range users {
		if other.ID != u.ID && !other.Disabled && slices.Contains(other.Roles, "admin") {
			return nil
		}
	}
	return api.Errorf(http.StatusConflict, "%s", why)
}

// handleResetPassword gives a user a new one-time password, shown once to
// the admin; the user's tokens and live sessions end.
func (s *API) handleResetPassword(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	if name == c.User.Name {
		return api.Errorf(http.StatusBadRequest, "to change your own password use pamd passwd")
	}
	password := auth.RandomPassword()
	h, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	var (
		u       *store.User
		revoked int
	)
	err = s.st.Update(func(tx *store.Tx) (err error) {
		if u, err = tx.UserByName(name); err != nil {
			return err
		}
		u.PasswordHash, u.MustChangePassword = h, true
		if err := tx.PutUser(u); err != nil {
			return err
		}
		if revoked, err = auth.RevokeTokens(tx, u.ID, ""); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.reset_password", name, "success", c.Source, fmt.Sprintf("one-time password issued; %d tokens revoked", revoked))
	})
	if err != nil {
		return err
	}
	s.auth.DropInitialPassword(name) // the bootstrap's one-time password is stale now
	n := s.live.EndUser(r.Context(), u.ID, "password reset by "+c.User.Name)
	writeJSON(w, http.StatusOK, api.ResetPasswordResponse{
		UserChange: api.UserChange{User: userView(u), TokensRevoked: revoked, SessionsEnded: n}, Password: password})
	return nil
}

// handleDeleteUser removes a user, their tokens and their live sessions.
// Their history stays: sessions and audit events keep their name.
func (s *API) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	if name == c.User.Name {
		return api.Errorf(http.StatusBadRequest, "you cannot delete yourself")
	}
	var (
		u       *store.User
		revoked int
	)
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if u, err = tx.UserByName(name); err != nil {
			return err
		}
		if slices.Contains(u.Roles, "admin") {
			if err := refuseLastAdmin(tx, u, "the last admin cannot be deleted"); err != nil {
				return err
			}
		}
		if revoked, err = auth.RevokeTokens(tx, u.ID, ""); err != nil {
			return err
		}
		if err := tx.DeleteUser(u); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.delete", name, "success", c.Source,
			fmt.Sprintf("roles: %s; %d tokens revoked", strings.Join(u.Roles, ","), revoked))
	})
	if err != nil {
		return err
	}
	s.auth.DropInitialPassword(name)
	n := s.live.EndUser(r.Context(), u.ID, "user deleted by "+c.User.Name)
	writeJSON(w, http.StatusOK, api.UserChange{User: userView(u), TokensRevoked: revoked, SessionsEnded: n})
	return nil
}

// handleUpdateRole edits a role. It grants what it grants from the next
// session; the live sessions of its holders that their roles no longer
// grant end now. The built-in admin role keeps */*.
func (s *API) handleUpdateRole(w http.ResponseWriter, r *http.Request) error {
	var req api.RoleUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Allow != nil && len(req.AddAllow)+len(req.RemoveAllow) > 0 {
		return api.Errorf(http.StatusBadRequest, "allow replaces the role's patterns: give it alone, or add and remove patterns instead")
	}
	if req.Allow != nil {
		if err := checkPatterns(*req.Allow); err != nil {
			return err
		}
	}
	if err := checkPatterns(req.AddAllow); err != nil {
		return err
	}
	var maxDuration time.Duration
	if req.MaxDuration != nil {
		d, err := parseMaxDuration(*req.MaxDuration)
		if err != nil {
			return err
		}
		maxDuration = d
	}
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var (
		role  *store.Role
		ended []string
	)
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if role, err = tx.RoleByName(name); err != nil {
			return err
		}
		changed, err := editRole(role, req, maxDuration)
		if err != nil {
			return err
		}
		if err := checkApprovers(tx, role.Approvers); err != nil {
			return err
		}
		if role.Builtin && role.Name == "admin" && !slices.Contains(role.Allow, "*/*") {
			return api.Errorf(http.StatusBadRequest, "the built-in admin role's grants cannot be reduced: it keeps */* (grant narrower access through roles of your own)")
		}
		if err := tx.PutRole(role); err != nil {
			return err
		}
		holders, err := holdersOf(tx, name)
		if err != nil {
			return err
		}
		if ended, err = ungranted(tx, holders...); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "role.update", name, "success", c.Source, strings.Join(changed, "; "))
	})
	if err != nil {
		return err
	}
	n := s.endSessions(r.Context(), ended, "role "+name+" changed by "+c.User.Name, c.User.Name)
	writeJSON(w, http.StatusOK, api.RoleChange{Role: roleView(role), SessionsEnded: n})
	return nil
}

// editRole applies req to role and says what changed; maxDuration is
// req's, parsed.
func editRole(role *store.Role, req api.RoleUpdate, maxDuration time.Duration) ([]string, error) {
	var changed []string
	if req.Allow != nil {
		allow := slices.Compact(slices.Clone(*req.Allow))
		if !slices.Equal(allow, role.Allow) {
			role.Allow = allow
			changed = append(changed, "allow: "+strings.Join(allow, ","))
		}
	}
	for _, p := range req.AddAllow {
		if !slices.Contains(role.Allow, p) {
			role.Allow = append(role.Allow, p)
			changed = append(changed, "allow +"+p)
		}
	}
	for _, p := range req.RemoveAllow {
		if !slices.Contains(role.Allow, p) {
			return nil, api.Errorf(http.StatusBadRequest, "role %s has no pattern %q (it allows: %s)", role.Name, p, strings.Join(role.Allow, " "))
		}
		role.Allow = slices.DeleteFunc(role.Allow, func(x string) bool { return x == p })
		changed = append(changed, "allow -"+p)
	}
	if req.MaxDuration != nil && maxDuration != role.MaxDuration {
		role.MaxDuration = maxDuration
		changed = append(changed, "max duration "+maxDuration.String())
	}
	if req.RequireReason != nil && *req.RequireReason != role.RequireReason {
		role.RequireReason = *req.RequireReason
		changed = append(changed, "require reason "+strconv.FormatBool(role.RequireReason))
	}
	if req.Description != nil && *req.Description != role.Description {
		role.Description = *req.Description
		changed = append(changed, "description "+strconv.Quote(role.Description))
	}
	more, err := editRoleRequests(role, req)
	if err != nil {
		return nil, err
	}
	changed = append(changed, more...)
	if len(changed) == 0 {
		return nil, api.Errorf(http.StatusBadRequest, "nothing to change")
	}
	return changed, nil
}

// checkPatterns checks RESOURCE_GLOB/ACCOUNT_GLOB patterns.
func checkPatterns(patterns []string) error {
	for _, p := range patterns {
		if err := sessions.ValidPattern(p); err != nil {
			return api.Errorf(http.StatusBadRequest, "allow %q: %v", p, err)
		}
	}
	return nil
}

// parseMaxDuration reads a role's longest session.
func parseMaxDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 7*24*time.Hour {
		return 0, api.Errorf(http.StatusBadRequest, "max duration %q: want a duration such as 30m or 4h, at most 168h", s)
	}
	return d, nil
}

// holdersOf is the ids of the users who hold a role.
func holdersOf(tx *store.Tx, role string) ([]string, error) {
	users, err := tx.Users()
	var ids []string
	for _, u := range users {
		if slices.Contains(u.Roles, role) {
			ids = append(ids, u.ID)
		}
	}
	return ids, err
}

// ungranted is the active sessions of the users that their roles, as tx
// has them, no longer grant. Called in the transaction of the change, so
// it sees the change and nothing after it.
func ungranted(tx *store.Tx, userIDs ...string) ([]string, error) {
	held := map[string][]*store.Role{} // by user id; an entry for each user, if empty
	for _, id := range userIDs {
		u, err := tx.User(id)
		if err != nil {
			return nil, err
		}
		roles := []*store.Role{}
		for _, name := range u.Roles {
			if role, err := tx.RoleByName(name); err == nil {
				roles = append(roles, role)
			}
		}
		held[id] = roles
	}
	all, err := tx.Sessions()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var ids []string
	for _, sess := range all {
		roles, ok := held[sess.UserID]
		if !ok || !sess.Active(now) {
			continue
		}
		if !sessions.StillGranted(roles, sess) {
			ids = append(ids, sess.ID)
		}
	}
	return ids, nil
}

// endSessions ends the sessions for reason, as actor's doing, and says
// how many. Their relays are cut and their gateways told why.
func (s *API) endSessions(ctx context.Context, ids []string, reason, actor string) int {
	for _, id := range ids {
		s.live.End(ctx, id, reason, actor)
	}
	return len(ids)
}
