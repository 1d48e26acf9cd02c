package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

// liveSessionOf is an active session of a user on resource/account (no
// resource behind it: only the names count for grants).
func (ts *testServer) liveSessionOf(t *testing.T, user, resource, account string) string {
	t.Helper()
	var u *store.User
	sess := &store.Session{ID: store.NewID(), UserName: user, ResourceName: resource, AccountName: account,
		CredentialHash: auth.HashToken(auth.RandomSecret(32)), CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}
	err := ts.st.Update(func(tx *store.Tx) (err error) {
		if u, err = tx.UserByName(user); err != nil {
			return err
		}
		sess.UserID = u.ID
		return tx.PutSession(sess)
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.live.Add(sess)
	return sess.ID
}

// endReason is why a session ended, or "" while it is active.
func (ts *testServer) endReason(t *testing.T, id string) string {
	t.Helper()
	var s *store.Session
	if err := ts.st.View(func(tx *store.Tx) (err error) { s, err = tx.Session(id); return err }); err != nil {
		t.Fatal(err)
	}
	if s.EndedAt.IsZero() {
		if ts.live.Get(id) == nil {
			t.Fatalf("session %s is active in the store but not live", id)
		}
		return ""
	}
	if ts.live.Get(id) != nil {
		t.Fatalf("session %s ended but still live", id)
	}
	return s.EndReason
}

func (ts *testServer) valid(t *testing.T, token string) bool {
	t.Helper()
	code, _ := ts.call(t, "10.0.0.1", token, "GET", "/api/v1/auth/whoami", nil, nil)
	return code == http.StatusOK
}

// expect calls the API as token and fails unless the status is want and
// the body holds every one of subs.
func (ts *testServer) expect(t *testing.T, token, method, path string, body, out any, want int, subs ...string) {
	t.Helper()
	code, text := ts.call(t, "10.0.0.1", token, method, path, body, out)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, text, want)
	}
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Fatalf("%s %s: %s, want it to say %q", method, path, text, s)
		}
	}
}

func (ts *testServer) auditOf(t *testing.T, token, action string) []api.AuditEvent {
	t.Helper()
	var events []api.AuditEvent
	ts.expect(t, token, "GET", "/api/v1/audit?action="+action, nil, &events, http.StatusOK)
	slices.Reverse(events) // the API answers newest first
	return events
}

// A removed role takes effect at once: the user's tokens end, and their
// live sessions the remaining roles do not grant; the others go on.
func TestUserRolesRemovedAtOnceAddedForTheNextSession(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	ts.expect(t, admin, "POST", "/api/v1/roles", api.Role{Name: "web", Allow: []string{"web/*"}}, nil, http.StatusCreated)
	ts.expect(t, admin, "POST", "/api/v1/roles", api.Role{Name: "db", Allow: []string{"db/*"}}, nil, http.StatusCreated)
	pw := ts.addUser(t, admin, "finn", "user", "web", "db")
	finn := ts.mustLogin(t, "10.0.0.7", "finn", pw)
	onWeb := ts.liveSessionOf(t, "finn", "web", "root")
	onDB := ts.liveSessionOf(t, "finn", "db", "ro")

	path := "/api/v1/users/finn"
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{}, nil, http.StatusBadRequest, "nothing to change")
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{AddRoles: []string{"nosuch"}}, nil, http.StatusBadRequest, `no role named \"nosuch\"`)
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{RemoveRoles: []string{"auditor"}}, nil, http.StatusBadRequest, "finn does not have role auditor")
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{AddRoles: []string{"web"}}, nil, http.StatusBadRequest, "already has roles")
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{AddRoles: []string{"db"}, RemoveRoles: []string{"db"}}, nil, http.StatusBadRequest, "both added and removed")
	ts.expect(t, admin, "PATCH", "/api/v1/users/nobody", api.UserUpdate{AddRoles: []string{"db"}}, nil, http.StatusNotFound)
	ts.expect(t, finn, "PATCH", path, api.UserUpdate{AddRoles: []string{"admin"}}, nil, http.StatusForbidden)

	var ch api.UserChange
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{RemoveRoles: []string{"web"}}, &ch, http.StatusOK)
	if ch.TokensRevoked < 1 || ch.SessionsEnded != 1 || slices.Contains(ch.User.Roles, "web") {
		t.Fatalf("removing web: %+v", ch)
	}
	if ts.valid(t, finn) {
		t.Fatal("a token outlived the removal of its user's role")
	}
	if r := ts.endReason(t, onWeb); !strings.Contains(r, "role web removed by admin") {
		t.Fatalf("the session web granted: end reason %q", r)
	}
	if r := ts.endReason(t, onDB); r != "" {
		t.Fatalf("the session db still grants ended: %q", r)
	}
	// Adding ends nothing; it grants from the next session.
	finn = ts.mustLogin(t, "10.0.0.7", "finn", pw)
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{AddRoles: []string{"web"}}, &ch, http.StatusOK)
	if ch.TokensRevoked != 0 || ch.SessionsEnded != 0 || !ts.valid(t, finn) || !slices.Contains(ch.User.Roles, "web") {
		t.Fatalf("adding web: %+v, token valid %v", ch, ts.valid(t, finn))
	}
	// A user keeps at least one role.
	ts.expect(t, admin, "PATCH", path, api.UserUpdate{RemoveRoles: []string{"user", "web", "db"}}, nil, http.StatusBadRequest, "no role left")

	events := ts.auditOf(t, admin, "user.update")
	if len(events) != 2 || !strings.HasPrefix(events[0].Detail, "roles -web; ") || !strings.HasSuffix(events[0].Detail, " tokens revoked") || events[1].Detail != "roles +web" {
		t.Fatalf("user.update events: %s", mustJSON(events))
	}
}

// The last enabled admin keeps the admin role; a disabled admin does not
// count.
func TestLastAdminKeepsTheAdminRole(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	self := api.UserUpdate{RemoveRoles: []string{"admin"}}
	ts.expect(t, admin, "PATCH", "/api/v1/users/admin", self, nil, http.StatusConflict, "the last admin cannot lose the admin role")

	ts.addUser(t, admin, "ada", "admin")
	ts.expect(t, admin, "POST", "/api/v1/users/ada/disable", nil, nil, http.StatusOK)
	ts.expect(t, admin, "PATCH", "/api/v1/users/admin", self, nil, http.StatusConflict, "the last admin")
	ts.expect(t, admin, "POST", "/api/v1/users/ada/enable", nil, nil, http.StatusOK)
	// With another admin it goes; the token that made the change stays,
	// now without the admin's rights.
	var ch api.UserChange
	ts.expect(t, admin, "PATCH", "/api/v1/users/admin", self, nil, http.StatusBadRequest, "admin would have no role left")
	self.AddRoles = []string{"user"}
	ts.expect(t, admin, "PATCH", "/api/v1/users/admin", self, &ch, http.StatusOK)
	if !ts.valid(t, admin) || slices.Contains(ch.User.Roles, "admin") {
		t.Fatalf("after giving up the admin role: %+v, token valid %v", ch, ts.valid(t, admin))
	}
	ts.expect(t, admin, "POST", "/api/v1/roles", api.Role{Name: "x", Allow: []string{"a/b"}}, nil, http.StatusForbidden)
}

// A password reset issues a one-time password, shown once, and ends what
// the old password opened: tokens and live sessions.
func TestResetPassword(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	old := ts.addUser(t, admin, "erin", "user")
	erin := ts.mustLogin(t, "10.0.0.5", "erin", old)
	sess := ts.liveSessionOf(t, "erin", "web", "root")

	ts.expect(t, admin, "POST", "/api/v1/users/admin/reset-password", nil, nil, http.StatusBadRequest, "pamd passwd")
	ts.expect(t, erin, "POST", "/api/v1/users/admin/reset-password", nil, nil, http.StatusForbidden)
	ts.expect(t, admin, "POST", "/api/v1/users/nobody/reset-password", nil, nil, http.StatusNotFound)
	var out api.ResetPasswordResponse
	ts.expect(t, admin, "POST", "/api/v1/users/erin/reset-password", nil, &out, http.StatusOK)
	if len(out.Password) < auth.MinPasswordLen || out.TokensRevoked < 1 || out.SessionsEnded != 1 || !out.User.MustChangePassword {
		t.Fatalf("reset: %+v", out)
	}
	if ts.valid(t, erin) {
		t.Fatal("a token outlived the password reset")
	}
	if r := ts.endReason(t, sess); r != "password reset by admin" {
		t.Fatalf("live session: end reason %q", r)
	}
	if code, _ := ts.login(t, "10.0.0.5", "erin", old); code != http.StatusUnauthorized {
		t.Fatalf("the old password logs in: %d", code)
	}
	// The new password is one-time: it must be changed before anything else.
	tok := ts.mustLogin(t, "10.0.0.5", "erin", out.Password)
	ts.expect(t, tok, "GET", "/api/v1/catalog", nil, nil, http.StatusForbidden, "change the one-time password first")
	ts.expect(t, tok, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: out.Password, New: "erin-newest-password-3"}, nil, http.StatusOK)
	ts.expect(t, tok, "GET", "/api/v1/catalog", nil, nil, http.StatusOK)

	events := ts.auditOf(t, admin, "user.reset_password")
	if len(events) != 1 || events[0].Target != "erin" || events[0].Actor != "admin" {
		t.Fatalf("reset not audited: %s", mustJSON(events))
	}
	_, all := ts.call(t, "10.0.0.1", admin, "GET", "/api/v1/audit", nil, nil)
	if strings.Contains(all, out.Password) || strings.Contains(ts.out.String(), out.Password) {
		t.Fatal("the one-time password is in the audit log or the server's output")
	}
}

// A deleted user cannot log in and their tokens and live sessions end;
// their history keeps their name.
func TestDeleteUser(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	pw := ts.addUser(t, admin, "erin", "user")
	erin := ts.mustLogin(t, "10.0.0.5", "erin", pw)
	sess := ts.liveSessionOf(t, "erin", "web", "root")

	ts.expect(t, admin, "DELETE", "/api/v1/users/admin", nil, nil, http.StatusBadRequest, "you cannot delete yourself")
	ts.expect(t, erin, "DELETE", "/api/v1/users/admin", nil, nil, http.StatusForbidden)
	ts.expect(t, admin, "DELETE", "/api/v1/users/nobody", nil, nil, http.StatusNotFound)
	var ch api.UserChange
	ts.expect(t, admin, "DELETE", "/api/v1/users/erin", nil, &ch, http.StatusOK)
	if ch.User.Name != "erin" || ch.TokensRevoked < 1 || ch.SessionsEnded != 1 {
		t.Fatalf("delete: %+v", ch)
	}
	if ts.valid(t, erin) {
		t.Fatal("a deleted user's token works")
	}
	if code, _ := ts.login(t, "10.0.0.5", "erin", pw); code != http.StatusUnauthorized {
		t.Fatalf("a deleted user logs in: %d", code)
	}
	if r := ts.endReason(t, sess); r != "user deleted by admin" {
		t.Fatalf("live session: end reason %q", r)
	}
	var users []api.User
	ts.expect(t, admin, "GET", "/api/v1/users", nil, &users, http.StatusOK)
	if strings.Contains(mustJSON(users), `"erin"`) {
		t.Fatalf("deleted user listed: %s", mustJSON(users))
	}
	// History keeps the name.
	var sessions []api.Session
	ts.expect(t, admin, "GET", "/api/v1/sessions", nil, &sessions, http.StatusOK)
	if len(sessions) != 1 || sessions[0].User != "erin" {
		t.Fatalf("sessions after the delete: %s", mustJSON(sessions))
	}
	var logins []api.AuditEvent
	ts.expect(t, admin, "GET", "/api/v1/audit?user=erin", nil, &logins, http.StatusOK)
	if len(logins) == 0 {
		t.Fatal("the audit log lost the deleted user's events")
	}
	if d := ts.auditOf(t, admin, "user.delete"); len(d) != 1 || d[0].Target != "erin" || !strings.Contains(d[0].Detail, "tokens revoked") {
		t.Fatalf("delete not audited: %s", mustJSON(d))
	}
	// The name is free for a new user, who inherits nothing.
	ts.addUser(t, admin, "erin", "user")
}

// Editing a role takes effect on the next session; its holders' live
// sessions it no longer grants end. The built-in admin keeps */*.
func TestRoleSet(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	ts.expect(t, admin, "POST", "/api/v1/roles", api.Role{Name: "ops", Allow: []string{"web/*", "db/*"}}, nil, http.StatusCreated)
	pw := ts.addUser(t, admin, "finn", "user", "ops")
	finn := ts.mustLogin(t, "10.0.0.7", "finn", pw)
	onWeb := ts.liveSessionOf(t, "finn", "web", "root")
	onDB := ts.liveSessionOf(t, "finn", "db", "ro")
	ptr := func(s string) *string { return &s }

	path := "/api/v1/roles/ops"
	bad := []struct {
		req  api.RoleUpdate
		want string
	}{
		{api.RoleUpdate{}, "nothing to change"},
		{api.RoleUpdate{Allow: &[]string{"web/*"}, AddAllow: []string{"x/y"}}, "allow replaces"},
		{api.RoleUpdate{AddAllow: []string{"no-slash"}}, "RESOURCE_GLOB/ACCOUNT_GLOB"},
		{api.RoleUpdate{Allow: &[]string{"web/["}}, "syntax error"},
		{api.RoleUpdate{RemoveAllow: []string{"mail/*"}}, `role ops has no pattern \"mail/*\"`},
		{api.RoleUpdate{MaxDuration: ptr("forever")}, "max duration"},
		{api.RoleUpdate{MaxDuration: ptr("200h")}, "at most 168h"},
		{api.RoleUpdate{Description: ptr("")}, "nothing to change"},
	}
	for _, b := range bad {
		ts.expect(t, admin, "PATCH", path, b.req, nil, http.StatusBadRequest, b.want)
	}
	ts.expect(t, admin, "PATCH", "/api/v1/roles/nosuch", api.RoleUpdate{Description: ptr("x")}, nil, http.StatusNotFound)
	ts.expect(t, finn, "PATCH", path, api.RoleUpdate{AddAllow: []string{"*/*"}}, nil, http.StatusForbidden)

	var ch api.RoleChange
	ts.expect(t, admin, "PATCH", path, api.RoleUpdate{RemoveAllow: []string{"web/*"}}, &ch, http.StatusOK)
	if ch.SessionsEnded != 1 || !slices.Equal(ch.Role.Allow, []string{"db/*"}) {
		t.Fatalf("narrowing ops: %+v", ch)
	}
	if r := ts.endReason(t, onWeb); r != "role ops changed by admin" {
		t.Fatalf("the session ops no longer grants: end reason %q", r)
	}
	if r := ts.endReason(t, onDB); r != "" {
		t.Fatalf("the session ops still grants ended: %q", r)
	}
	if !ts.valid(t, finn) {
		t.Fatal("editing a role ended its holders' tokens")
	}
	// Access follows at once: the narrowed pattern is denied, the rest not.
	code, body := ts.call(t, "10.0.0.7", finn, "POST", "/api/v1/sessions", api.CreateSessionRequest{Resource: "web", Account: "root"}, nil)
	if code != http.StatusForbidden || !strings.Contains(body, "denied") {
		t.Fatalf("a session the role no longer grants: %d %s", code, body)
	}

	yes := true
	ts.expect(t, admin, "PATCH", path, api.RoleUpdate{Allow: &[]string{"db/*", "web/ro"}, MaxDuration: ptr("2h"), RequireReason: &yes, Description: ptr("operators")}, &ch, http.StatusOK)
	if r := ch.Role; !slices.Equal(r.Allow, []string{"db/*", "web/ro"}) || r.MaxDuration != "2h0m0s" || !r.RequireReason || r.Description != "operators" || ch.SessionsEnded != 0 {
		t.Fatalf("editing ops: %+v", ch)
	}
	if r := ts.endReason(t, onDB); r != "" {
		t.Fatalf("a session still granted ended: %q", r)
	}

	// The built-in admin role keeps */*; other changes to it are allowed.
	for _, req := range []api.RoleUpdate{{Allow: &[]string{"web/*"}}, {RemoveAllow: []string{"*/*"}}} {
		ts.expect(t, admin, "PATCH", "/api/v1/roles/admin", req, nil, http.StatusBadRequest, "the built-in admin role's grants cannot be reduced")
	}
	ts.expect(t, admin, "PATCH", "/api/v1/roles/admin", api.RoleUpdate{Description: ptr("everything")}, nil, http.StatusOK)

	events := ts.auditOf(t, admin, "role.update")
	if len(events) != 3 || events[0].Detail != "allow -web/*" || !strings.Contains(events[1].Detail, "max duration 2h0m0s") {
		t.Fatalf("role.update events: %s", mustJSON(events))
	}
}

// A gateway that resources name is not removed unless they move; moving
// them is audited, and the gateway's name and unused enrollment tokens go.
func TestRemoveGateway(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	err := ts.st.Update(func(tx *store.Tx) error {
		for _, g := range []string{"gw1", "gw2"} {
			if err := tx.CreateGateway(&store.Gateway{ID: store.NewID(), Name: g, CreatedAt: time.Now().UTC()}); err != nil {
				return err
			}
		}
		for _, r := range []string{"web", "cache"} {
			if err := tx.CreateResource(&store.Resource{ID: store.NewID(), Name: r, Type: "tcp", Gateway: "gw1", Host: "127.0.0.1", Port: 9}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.expect(t, admin, "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "gw1", Replace: true}, nil, http.StatusCreated)

	ts.expect(t, admin, "DELETE", "/api/v1/gateways/nosuch", nil, nil, http.StatusNotFound, "no gateway nosuch")
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw1", nil, nil, http.StatusConflict, "gateway gw1 still serves cache, web", "--move-to")
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw1?move_to=gw1", nil, nil, http.StatusBadRequest, "names the gateway being removed")
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw1?move_to=gw9", nil, nil, http.StatusBadRequest, `no gateway named \"gw9\"`)

	var out api.GatewayRemoval
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw1?move_to=gw2", nil, &out, http.StatusOK)
	if !slices.Equal(out.Moved, []string{"cache", "web"}) || out.MovedTo != "gw2" || out.Cut {
		t.Fatalf("removal: %+v", out)
	}
	var resources []api.Resource
	ts.expect(t, admin, "GET", "/api/v1/resources", nil, &resources, http.StatusOK)
	for _, r := range resources {
		if r.Gateway != "gw2" {
			t.Fatalf("resource %s still on %s", r.Name, r.Gateway)
		}
	}
	var gws []api.Gateway
	ts.expect(t, admin, "GET", "/api/v1/gateways", nil, &gws, http.StatusOK)
	if len(gws) != 1 || gws[0].Name != "gw2" {
		t.Fatalf("gateways after the removal: %s", mustJSON(gws))
	}
	// The enrollment token made before the removal cannot bring it back.
	var voided int
	ts.st.View(func(tx *store.Tx) error {
		all, err := tx.EnrollTokens()
		for _, e := range all {
			if e.GatewayName == "gw1" {
				voided++
			}
		}
		return err
	})
	if voided != 0 {
		t.Fatalf("%d enrollment tokens for the removed gateway left", voided)
	}
	if ev := ts.auditOf(t, admin, "gateway.remove"); len(ev) != 1 || ev[0].Detail != "moved cache, web to gw2; 1 unused enrollment tokens voided" {
		t.Fatalf("gateway.remove events: %s", mustJSON(ev))
	}
	if ev := ts.auditOf(t, admin, "resource.update"); len(ev) != 2 || !strings.Contains(ev[0].Detail, "gateway gw2 (off gateway gw1, removed)") {
		t.Fatalf("resource.update events: %s", mustJSON(ev))
	}
	// Now gw2 serves them; a gateway no resource names goes as it is.
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw2", nil, nil, http.StatusConflict, "still serves cache, web")
	ts.expect(t, admin, "DELETE", "/api/v1/resources/cache", nil, nil, http.StatusOK)
	ts.expect(t, admin, "DELETE", "/api/v1/resources/web", nil, nil, http.StatusOK)
	ts.expect(t, admin, "DELETE", "/api/v1/gateways/gw2", nil, &out, http.StatusOK)
	if len(out.Moved) != 0 || out.Cut {
		t.Fatalf("removal of an idle gateway: %+v", out)
	}
}
