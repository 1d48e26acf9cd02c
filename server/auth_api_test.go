package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// testServer is a server on a temporary data dir whose API is called in
// process, from any source address the test names.
type testServer struct {
	*Server
	h   http.Handler
	out *bytes.Buffer
}

func newTestServer(t *testing.T, adminPassword string) *testServer {
	t.Helper()
	out := &bytes.Buffer{}
	s, err := New(Config{DataDir: t.TempDir(), AdminPassword: adminPassword, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.st.Close() })
	return &testServer{Server: s, h: s.api.Handler(http.NotFoundHandler()), out: out}
}

// call sends a JSON request from source with token (may be "") and
// decodes the answer into out (may be nil); it returns the status.
func (ts *testServer) call(t *testing.T, source, token, method, path string, body, out any) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, "https://pamd.test"+path, rd)
	r.RemoteAddr = source + ":40000"
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	if out != nil && w.Code < 300 {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, w.Body.String())
		}
	}
	return w.Code, w.Body.String()
}

func (ts *testServer) login(t *testing.T, source, user, password string) (int, string) {
	t.Helper()
	var resp api.LoginResponse
	code, body := ts.call(t, source, "", "POST", "/api/v1/auth/login", api.LoginRequest{Username: user, Password: password}, &resp)
	if code == http.StatusOK {
		return code, resp.Token
	}
	return code, body
}

func (ts *testServer) mustLogin(t *testing.T, source, user, password string) string {
	t.Helper()
	code, tok := ts.login(t, source, user, password)
	if code != http.StatusOK {
		t.Fatalf("login %s from %s: %d %s", user, source, code, tok)
	}
	return tok
}

func (ts *testServer) addUser(t *testing.T, adminToken, name string, roles ...string) string {
	t.Helper()
	var out api.CreateUserResponse
	if code, body := ts.call(t, "10.0.0.1", adminToken, "POST", "/api/v1/users", api.CreateUserRequest{Name: name, Roles: roles}, &out); code != http.StatusCreated {
		t.Fatalf("add user %s: %d %s", name, code, body)
	}
	tok := ts.mustLogin(t, "10.0.0.1", name, out.Password)
	own := name + "-own-password-1"
	if code, body := ts.call(t, "10.0.0.1", tok, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: out.Password, New: own}, nil); code != http.StatusOK {
		t.Fatalf("set password of %s: %d %s", name, code, body)
	}
	return own
}

const testAdminPassword = "admin-unit-password-1"

// perSourceFree is how many failed logins auth lets one address make
// before it waits.
const perSourceFree = 20

// A stranger guessing the admin's password slows down only themselves;
// the admin, from their own address, logs in at once (item: lockout is
// not a denial of service).
func TestLoginThrottledPerSourceNotPerAccount(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	for i := 0; i < 5; i++ {
		if code, _ := ts.login(t, "203.0.113.9", "admin", "wrong-password-x"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: status %d", i, code)
		}
	}
	// The stranger is now held back, even with the right password, and
	// before any hashing.
	code, body := ts.login(t, "203.0.113.9", "admin", testAdminPassword)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too many failed logins") {
		t.Fatalf("sixth try from the guessing address: %d %s", code, body)
	}
	// An unknown name is held back the same way: nothing tells names apart.
	for i := 0; i < 5; i++ {
		ts.login(t, "203.0.113.9", "nobody", "wrong-password-x")
	}
	if code, _ := ts.login(t, "203.0.113.9", "nobody", "wrong-password-x"); code != http.StatusTooManyRequests {
		t.Fatalf("unknown name not throttled: %d", code)
	}
	// The admin is never locked out by strangers.
	ts.mustLogin(t, "198.51.100.7", "admin", testAdminPassword)
	// Many names from one address: the address itself is held back.
	for i := 0; i < perSourceFree; i++ {
		ts.login(t, "192.0.2.50", "user"+string(rune('a'+i)), "wrong-password-x")
	}
	if code, _ := ts.login(t, "192.0.2.50", "admin", testAdminPassword); code != http.StatusTooManyRequests {
		t.Fatalf("an address that sprayed %d names is not held back: %d", perSourceFree, code)
	}
	var events []api.AuditEvent
	tok := ts.mustLogin(t, "198.51.100.7", "admin", testAdminPassword)
	ts.call(t, "198.51.100.7", tok, "GET", "/api/v1/audit?action=auth.login", nil, &events)
	failures := 0
	for _, e := range events {
		if e.Outcome == "failure" && e.Source == "203.0.113.9" {
			failures++
		}
	}
	if failures != 10 { // the throttled tries are refused before they are checked
		t.Fatalf("%d failures from the guessing address audited, want 10", failures)
	}
}

func TestLoginNameIsValidatedBeforeTheAuditLog(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	long := strings.Repeat("\x1b[2K\rforged row\n", 10_000)
	if code, _ := ts.login(t, "10.0.0.3", long, "x"); code != http.StatusUnauthorized {
		t.Fatalf("a malformed name: %d", code)
	}
	tok := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	var events []api.AuditEvent
	ts.call(t, "10.0.0.1", tok, "GET", "/api/v1/audit?action=auth.login", nil, &events)
	var found bool
	for _, e := range events {
		if e.Source != "10.0.0.3" {
			continue
		}
		found = true
		if len(e.Actor) > 200 || strings.ContainsAny(e.Actor, "\x1b\r\n") || !strings.HasPrefix(e.Actor, "invalid:") {
			t.Fatalf("audited actor %q (%d bytes)", e.Actor[:min(80, len(e.Actor))], len(e.Actor))
		}
	}
	if !found {
		t.Fatal("the refused login is not audited")
	}
}

func TestLoginRefusesCrossSiteRequests(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	send := func(ct, origin, site string) int {
		b, _ := json.Marshal(api.LoginRequest{Username: "admin", Password: testAdminPassword})
		for _, path := range []string{"/api/v1/auth/login", "/api/v1/ui/login"} {
			r := httptest.NewRequest("POST", "https://pamd.test"+path, bytes.NewReader(b))
			r.RemoteAddr = "10.0.0.4:1"
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			if origin != "" {
				r.Header.Set("Origin", origin)
			}
			if site != "" {
				r.Header.Set("Sec-Fetch-Site", site)
			}
			w := httptest.NewRecorder()
			ts.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				return w.Code
			}
		}
		return http.StatusOK
	}
	for _, c := range []struct {
		ct, origin, site string
		want             int
	}{
		{"application/json", "", "", http.StatusOK},                                  // the CLI
		{"application/json; charset=utf-8", "https://pamd.test", "same-origin", 200}, // the console
		{"text/plain", "", "", http.StatusUnsupportedMediaType},                      // a cross-site form's type
		{"", "", "", http.StatusUnsupportedMediaType},
		{"application/json", "https://evil.example", "", http.StatusForbidden},
		{"application/json", "", "cross-site", http.StatusForbidden},
		{"application/json", "https://pamd.test", "same-site", http.StatusForbidden},
	} {
		if got := send(c.ct, c.origin, c.site); got != c.want {
			t.Errorf("Content-Type %q Origin %q Sec-Fetch-Site %q: %d, want %d", c.ct, c.origin, c.site, got, c.want)
		}
	}
}

// Whatever changes who a user is or what they may do ends the tokens
// issued before it.
func TestTokensEndWithPasswordMFADisableAndRole(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	valid := func(tok string) bool {
		code, _ := ts.call(t, "10.0.0.1", tok, "GET", "/api/v1/auth/whoami", nil, nil)
		return code == http.StatusOK
	}

	pw := ts.addUser(t, admin, "erin", "user")
	a := ts.mustLogin(t, "10.0.0.5", "erin", pw)
	b := ts.mustLogin(t, "10.0.0.6", "erin", pw)
	var list []api.TokenInfo
	if code, body := ts.call(t, "10.0.0.5", a, "GET", "/api/v1/users/erin/tokens", nil, &list); code != 200 {
		t.Fatalf("own tokens: %d %s", code, body)
	}
	if len(list) < 2 || strings.Contains(mustJSON(list), strings.TrimPrefix(a, "pamd_")) {
		t.Fatalf("token list %s", mustJSON(list))
	}
	if code, _ := ts.call(t, "10.0.0.5", a, "GET", "/api/v1/users/admin/tokens", nil, nil); code != http.StatusForbidden {
		t.Fatalf("a user listed the admin's tokens: %d", code)
	}
	// A password change keeps the token that made it and ends the others.
	if code, body := ts.call(t, "10.0.0.5", a, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: pw, New: "erin-newer-password-2"}, nil); code != 200 {
		t.Fatalf("password change: %d %s", code, body)
	}
	if !valid(a) || valid(b) {
		t.Fatalf("after a password change: changing token valid %v, other token valid %v", valid(a), valid(b))
	}
	// Disabling ends every token.
	ts.call(t, "10.0.0.1", admin, "POST", "/api/v1/users/erin/disable", nil, nil)
	ts.call(t, "10.0.0.1", admin, "POST", "/api/v1/users/erin/enable", nil, nil)
	if valid(a) {
		t.Fatal("a token outlived disabling its user")
	}
	// An MFA reset ends every token.
	c := ts.mustLogin(t, "10.0.0.5", "erin", "erin-newer-password-2")
	ts.call(t, "10.0.0.1", admin, "POST", "/api/v1/users/erin/reset-mfa", nil, nil)
	if valid(c) {
		t.Fatal("a token outlived an MFA reset")
	}
	// Removing a role its holder has ends their tokens.
	ts.call(t, "10.0.0.1", admin, "POST", "/api/v1/roles", api.Role{Name: "ops", Allow: []string{"web/*"}}, nil)
	ts.addUser(t, admin, "finn", "user", "ops")
	d := ts.mustLogin(t, "10.0.0.7", "finn", "finn-own-password-1")
	if code, body := ts.call(t, "10.0.0.1", admin, "DELETE", "/api/v1/roles/ops", nil, nil); code != 200 {
		t.Fatalf("delete role: %d %s", code, body)
	}
	if valid(d) {
		t.Fatal("a token outlived the removal of its user's role")
	}
	// An admin revokes a user's tokens on demand.
	e := ts.mustLogin(t, "10.0.0.7", "finn", "finn-own-password-1")
	var rev api.RevokeTokensResponse
	if code, body := ts.call(t, "10.0.0.1", admin, "DELETE", "/api/v1/users/finn/tokens", nil, &rev); code != 200 || rev.Revoked < 1 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if valid(e) || !valid(admin) {
		t.Fatalf("after revoke: user's token valid %v, admin's valid %v", valid(e), valid(admin))
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// The generated bootstrap password is one-time, never printed, and its
// file goes when the admin sets their own.
func TestBootstrapPasswordIsOneTime(t *testing.T) {
	ts := newTestServer(t, "")
	file := filepath.Join(ts.cfg.DataDir, "initial-admin-password")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pw := strings.TrimSpace(string(raw))
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file mode %v", fi.Mode().Perm())
	}
	if strings.Contains(ts.out.String(), pw) || !strings.Contains(ts.out.String(), file) {
		t.Fatalf("first-start output %q", ts.out.String())
	}
	tok := ts.mustLogin(t, "10.0.0.1", "admin", pw)
	if code, body := ts.call(t, "10.0.0.1", tok, "GET", "/api/v1/users", nil, nil); code != http.StatusForbidden || !strings.Contains(body, "one-time password") {
		t.Fatalf("the one-time password reached the API: %d %s", code, body)
	}
	if code, body := ts.call(t, "10.0.0.1", tok, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: pw, New: "admin-own-password-1"}, nil); code != 200 {
		t.Fatalf("change: %d %s", code, body)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the one-time password file is still there: %v", err)
	}
	if code, _ := ts.call(t, "10.0.0.1", tok, "GET", "/api/v1/users", nil, nil); code != 200 {
		t.Fatalf("after the change: %d", code)
	}
}

func TestMFAEnrolmentNeedsThePassword(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	tok := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	if code, _ := ts.call(t, "10.0.0.1", tok, "POST", "/api/v1/mfa/enroll", api.MFAEnrollRequest{Password: "wrong-password-x"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("enrolment with a wrong password: %d", code)
	}
	if code, _ := ts.call(t, "10.0.0.1", tok, "POST", "/api/v1/mfa/enroll", nil, nil); code == http.StatusOK {
		t.Fatal("enrolment with no password")
	}
	var e api.MFAEnrollResponse
	if code, body := ts.call(t, "10.0.0.1", tok, "POST", "/api/v1/mfa/enroll", api.MFAEnrollRequest{Password: testAdminPassword}, &e); code != 200 || e.Secret == "" {
		t.Fatalf("enrolment with the password: %d %s", code, body)
	}
}

// A resource or account that does not exist gets the answer of one that
// is not granted.
func TestAccessDeniedSameForMissingAndNotGranted(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	err := ts.st.Update(func(tx *store.Tx) error {
		for _, name := range []string{"web", "db"} {
			r := &store.Resource{ID: store.NewID(), Name: name, Type: "tcp", Gateway: "gw", Host: "127.0.0.1", Port: 1, CreatedAt: time.Now()}
			if err := tx.CreateResource(r); err != nil {
				return err
			}
			if err := tx.CreateAccount(&store.Account{ID: store.NewID(), ResourceID: r.ID, Name: "app"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.call(t, "10.0.0.1", admin, "POST", "/api/v1/roles", api.Role{Name: "webonly", Allow: []string{"web/*"}}, nil)
	pw := ts.addUser(t, admin, "gus", "user", "webonly")
	tok := ts.mustLogin(t, "10.0.0.8", "gus", pw)
	answer := func(target string) (int, string) {
		res, acct, _ := strings.Cut(target, "/")
		code, body := ts.call(t, "10.0.0.8", tok, "POST", "/api/v1/sessions", api.CreateSessionRequest{Resource: res, Account: acct}, nil)
		return code, strings.ReplaceAll(body, target, "X")
	}
	wantCode, wantBody := answer("db/app") // exists, not granted
	if wantCode != http.StatusForbidden {
		t.Fatalf("not granted: %d %s", wantCode, wantBody)
	}
	for _, target := range []string{"nope/app", "db/nope", "web/nope"} {
		if code, body := answer(target); code != wantCode || body != wantBody {
			t.Errorf("%s: %d %s, want the not-granted answer %d %s", target, code, body, wantCode, wantBody)
		}
	}
	var events []api.AuditEvent
	ts.call(t, "10.0.0.1", admin, "GET", "/api/v1/audit?action=access.deny", nil, &events)
	if len(events) != 4 {
		t.Fatalf("%d denials audited, want 4", len(events))
	}
}

// pamd dev keeps its printed password: it is for evaluation.
func TestDevBootstrapPasswordLasts(t *testing.T) {
	out := &bytes.Buffer{}
	s, err := New(Config{DataDir: t.TempDir(), KeepAdminPassword: true, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	defer s.st.Close()
	var u *store.User
	s.st.View(func(tx *store.Tx) (err error) { u, err = tx.UserByName("admin"); return })
	if u == nil || u.MustChangePassword {
		t.Fatalf("dev admin %+v", u)
	}
}
