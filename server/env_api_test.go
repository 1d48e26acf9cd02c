package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/server/servertest"
)

func ptr[T any](v T) *T { return &v }

// call is one API request in a table: who makes it, and the status it must get.
type call struct {
	name   string
	as     string // a client of the test: "admin", "alice" (role echoers), "audra" (auditor), "anon"
	method string
	path   string
	in     any
	want   int // 200 stands for any 2xx
	check  func(t *testing.T, out []byte)
}

func runCalls(t *testing.T, e *servertest.Env, clients map[string]*apiclient.Client, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			cl := clients[c.as]
			if cl == nil {
				t.Fatalf("no client %q", c.as)
			}
			var out []byte
			err := cl.Do(context.Background(), c.method, c.path, c.in, &out)
			if got := servertest.Status(err); got != c.want {
				t.Fatalf("%s %s as %s: status %d (%v), want %d", c.method, c.path, c.as, got, err, c.want)
			}
			if c.check != nil && err == nil {
				var compact bytes.Buffer
				if json.Compact(&compact, out) == nil {
					out = compact.Bytes()
				}
				c.check(t, out)
			}
		})
	}
}

func contains(subs ...string) func(t *testing.T, out []byte) {
	return func(t *testing.T, out []byte) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(string(out), s) {
				t.Errorf("answer lacks %q:\n%s", s, out)
			}
		}
	}
}

func lacks(subs ...string) func(t *testing.T, out []byte) {
	return func(t *testing.T, out []byte) {
		t.Helper()
		for _, s := range subs {
			if strings.Contains(string(out), s) {
				t.Errorf("answer has %q:\n%s", s, out)
			}
		}
	}
}

// TestAPIAdministration walks the administration API in order: what each
// role may do, what malformed requests get, and what the answers hold.
func TestAPIAdministration(t *testing.T) {
	e := servertest.New(t)
	echo := e.AddEchoResource(t, "echo")
	e.AddRole(t, api.Role{Name: "echoers", Allow: []string{"echo/*"}, MaxDuration: "1h", RequireReason: true})
	alice, _ := e.AddUser(t, "alice", "echoers")
	audra, _ := e.AddUser(t, "audra", "auditor")
	anon, _ := e.NewClient("")
	clients := map[string]*apiclient.Client{"admin": e.Client, "alice": alice, "audra": audra, "anon": anon}
	port := echo.Port

	runCalls(t, e, clients, []call{
		{"info is public", "anon", "GET", "/api/v1/info", nil, 200, nil},
		{"whoami needs a token", "anon", "GET", "/api/v1/auth/whoami", nil, 401, nil},
		{"whoami", "alice", "GET", "/api/v1/auth/whoami", nil, 200, contains(`"alice"`, "echoers")},
		{"unknown endpoint", "admin", "GET", "/api/v1/nothing", nil, 404, nil},

		{"users: admin lists", "admin", "GET", "/api/v1/users", nil, 200, contains("alice", "audra", "admin")},
		{"users: auditor lists", "audra", "GET", "/api/v1/users", nil, 200, contains("alice")},
		{"users: a user may not list", "alice", "GET", "/api/v1/users", nil, 403, nil},
		{"users: a user may not create", "alice", "POST", "/api/v1/users", api.CreateUserRequest{Name: "eve", Roles: []string{"admin"}}, 403, nil},
		{"users: an auditor may not create", "audra", "POST", "/api/v1/users", api.CreateUserRequest{Name: "eve"}, 403, nil},
		{"users: bad name", "admin", "POST", "/api/v1/users", api.CreateUserRequest{Name: "a b/c"}, 400, nil},
		{"users: unknown role", "admin", "POST", "/api/v1/users", api.CreateUserRequest{Name: "bob", Roles: []string{"nosuch"}}, 400, nil},
		{"users: duplicate", "admin", "POST", "/api/v1/users", api.CreateUserRequest{Name: "alice"}, 409, nil},
		{"users: create bob", "admin", "POST", "/api/v1/users", api.CreateUserRequest{Name: "bob", Roles: []string{"user"}}, 200, contains(`"password"`, `"must_change_password":true`)},
		{"users: disable bob", "admin", "POST", "/api/v1/users/bob/disable", nil, 200, nil},
		{"users: disable nobody", "admin", "POST", "/api/v1/users/nobody/disable", nil, 404, nil},
		{"users: list shows bob disabled", "admin", "GET", "/api/v1/users", nil, 200, contains(`"disabled":true`)},
		{"users: enable bob", "admin", "POST", "/api/v1/users/bob/enable", nil, 200, nil},
		{"users: reset MFA", "admin", "POST", "/api/v1/users/bob/reset-mfa", nil, 200, nil},
		{"tokens: own", "alice", "GET", "/api/v1/users/alice/tokens", nil, 200, contains(`"current":true`)},
		{"tokens: another's", "alice", "GET", "/api/v1/users/admin/tokens", nil, 403, nil},
		{"tokens: admin reads alice's", "admin", "GET", "/api/v1/users/alice/tokens", nil, 200, nil},

		{"roles: list", "audra", "GET", "/api/v1/roles", nil, 200, contains("echoers", `"builtin":true`)},
		{"roles: a user may not list", "alice", "GET", "/api/v1/roles", nil, 403, nil},
		{"roles: bad pattern", "admin", "POST", "/api/v1/roles", api.Role{Name: "bad", Allow: []string{"no-slash"}}, 400, nil},
		{"roles: bad glob", "admin", "POST", "/api/v1/roles", api.Role{Name: "bad", Allow: []string{"[/x"}}, 400, nil},
		{"roles: bad duration", "admin", "POST", "/api/v1/roles", api.Role{Name: "bad", Allow: []string{"a/b"}, MaxDuration: "forever"}, 400, nil},
		{"roles: duplicate", "admin", "POST", "/api/v1/roles", api.Role{Name: "echoers", Allow: []string{"a/b"}}, 409, nil},
		{"roles: create temp", "admin", "POST", "/api/v1/roles", api.Role{Name: "temp", Allow: []string{"x/*"}}, 200, nil},
		{"roles: delete temp", "admin", "DELETE", "/api/v1/roles/temp", nil, 200, nil},
		{"roles: delete again", "admin", "DELETE", "/api/v1/roles/temp", nil, 404, nil},
		{"roles: delete a builtin", "admin", "DELETE", "/api/v1/roles/auditor", nil, 400, nil},

		{"gateways: list", "audra", "GET", "/api/v1/gateways", nil, 200, contains(`"local"`, `"online":true`, `"version":"servertest"`)},
		{"gateways: a user may not list", "alice", "GET", "/api/v1/gateways", nil, 403, nil},
		{"gateways: token", "admin", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "dc2"}, 200, contains(`"token"`, "pamd gateway")},
		{"gateways: token for an enrolled name", "admin", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "local"}, 409, nil},
		{"gateways: token with a bad TTL", "admin", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "dc3", TTL: "48h"}, 400, nil},
		{"gateways: token by a user", "alice", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "dc4"}, 403, nil},
		{"gateways: enroll with a malformed token", "anon", "POST", "/api/v1/gateways/enroll", api.EnrollRequest{Token: "pamde_nonsense", CSR: "x"}, 400, nil},
		{"gateways: revoke nobody", "admin", "POST", "/api/v1/gateways/nobody/revoke", nil, 404, nil},

		{"resources: list", "audra", "GET", "/api/v1/resources", nil, 200, contains(`"echo"`, `"tcp"`)},
		{"resources: get", "admin", "GET", "/api/v1/resources/echo", nil, 200, contains(`"any"`)},
		{"resources: get missing", "admin", "GET", "/api/v1/resources/nothing", nil, 404, nil},
		{"resources: a user may not list", "alice", "GET", "/api/v1/resources", nil, 403, nil},
		{"resources: bad type", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "ftp", Gateway: "local", Host: "h", Port: 21}, 400, nil},
		{"resources: no host", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Gateway: "local", Port: 1}, 400, nil},
		{"resources: bad port", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Gateway: "local", Host: "h", Port: 70000}, 400, nil},
		{"resources: no gateway", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Host: "h", Port: 1}, 400, nil},
		{"resources: unknown gateway", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Gateway: "nowhere", Host: "h", Port: 1}, 400, nil},
		{"resources: a gateway and a group", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Gateway: "local", GatewayGroup: "dc2", Host: "h", Port: 1}, 400, contains("name one")},
		{"resources: a bad group name", "admin", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", GatewayGroup: "dc 2", Host: "h", Port: 1}, 400, contains("gateway group name")},
		{"resources: on a group no gateway is in", "admin", "POST", "/api/v1/resources", api.Resource{Name: "grouped", Type: "tcp", GatewayGroup: "dc2", Host: "h", Port: 1}, 400, contains(`no gateway is in group \"dc2\"`)},
		{"gateways: a token in a group", "admin", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "dc2-a", Group: "dc2"}, 200, nil},
		{"gateways: a token in a bad group", "admin", "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: "dc2-b", Group: "dc 2"}, 400, contains("gateway group name")},
		{"resources: on a group", "admin", "POST", "/api/v1/resources", api.Resource{Name: "grouped", Type: "tcp", GatewayGroup: "dc2", Host: "h", Port: 1}, 200, contains(`"gateway_group":"dc2"`)},
		{"gateways: set an unknown one", "admin", "PATCH", "/api/v1/gateways/nowhere", api.GatewayUpdate{Group: ptr("dc2")}, 404, nil},
		{"gateways: set nothing", "admin", "PATCH", "/api/v1/gateways/local", api.GatewayUpdate{}, 400, contains("nothing to change")},
		{"gateways: set a bad group", "admin", "PATCH", "/api/v1/gateways/local", api.GatewayUpdate{Group: ptr("dc 2")}, 400, contains("gateway group name")},
		{"gateways: set by a user", "alice", "PATCH", "/api/v1/gateways/local", api.GatewayUpdate{Group: ptr("dc2")}, 403, nil},
		{"resources: duplicate", "admin", "POST", "/api/v1/resources", api.Resource{Name: "echo", Type: "tcp", Gateway: "local", Host: "h", Port: 1}, 409, nil},
		{"resources: by a user", "alice", "POST", "/api/v1/resources", api.Resource{Name: "x", Type: "tcp", Gateway: "local", Host: "h", Port: 1}, 403, nil},
		{"resources: mongodb without a uri", "admin", "POST", "/api/v1/resources", api.Resource{Name: "m", Type: "mongodb", Gateway: "local"}, 400, nil},
		{"resources: mssql bad tls", "admin", "POST", "/api/v1/resources", api.Resource{Name: "q", Type: "mssql", Gateway: "local", Host: "h", Options: map[string]string{"tls": "sometimes"}}, 400, nil},
		{"resources: mssql bad tls_ca", "admin", "POST", "/api/v1/resources", api.Resource{Name: "q", Type: "mssql", Gateway: "local", Host: "h", Options: map[string]string{"tls_ca": "not PEM"}}, 400, nil},
		{"resources: mssql without TLS warns", "admin", "POST", "/api/v1/resources", api.Resource{Name: "sql", Type: "mssql", Gateway: "local", Host: "127.0.0.1", Options: map[string]string{"tls": "false", "database": "app"}}, 200, contains("in the clear", `"port":1433`)},
		{"accounts: mssql without a password", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "app", Username: "app"}, 400, nil},
		{"accounts: mssql with a key", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "app", Username: "app", Password: "pw-1234567", PrivateKey: "k"}, 400, nil},
		{"accounts: mssql sql login with a domain", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "app", Username: "app", Password: "pw-1234567", Domain: "CORP"}, 400, nil},
		{"accounts: mssql sql login", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "app", Username: "app", Password: "pw-1234567", SkipLoginCheck: true}, 200, contains(`"auth":"sql"`)},
		{"accounts: mssql ntlm", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "corp", Username: "svc", Password: "pw-1234567", Auth: "ntlm", Domain: "CORP", SkipLoginCheck: true}, 200, contains(`"auth":"ntlm"`)},
		{"accounts: mssql unknown auth", "admin", "POST", "/api/v1/resources/sql/accounts", api.CreateAccountRequest{Name: "x", Username: "svc", Password: "pw-1234567", Auth: "magic"}, 400, nil},
		{"resources: mssql options updated", "admin", "PATCH", "/api/v1/resources/sql", api.ResourceUpdate{Options: map[string]string{"database": "other"}}, 200, contains(`"other"`)},
		{"resources: delete sql", "admin", "DELETE", "/api/v1/resources/sql", nil, 200, nil},
		{"resources: add web", "admin", "POST", "/api/v1/resources", api.Resource{Name: "web", Type: "tcp", Gateway: "local", Host: "127.0.0.1", Port: port}, 200, nil},
		{"resources: update nothing", "admin", "PATCH", "/api/v1/resources/web", api.ResourceUpdate{}, 400, nil},
		{"resources: update options of tcp", "admin", "PATCH", "/api/v1/resources/web", api.ResourceUpdate{Options: map[string]string{"a": "b"}}, 400, nil},
		{"resources: update bad port", "admin", "PATCH", "/api/v1/resources/web", api.ResourceUpdate{Port: ptr(0)}, 400, nil},
		{"resources: update unknown gateway", "admin", "PATCH", "/api/v1/resources/web", api.ResourceUpdate{Gateway: ptr("nowhere")}, 400, nil},
		{"resources: update host", "admin", "PATCH", "/api/v1/resources/web", api.ResourceUpdate{Host: ptr("localhost")}, 200, contains(`"localhost"`)},
		{"resources: update missing", "admin", "PATCH", "/api/v1/resources/nothing", api.ResourceUpdate{Host: ptr("h")}, 404, nil},

		{"accounts: list", "audra", "GET", "/api/v1/resources/echo/accounts", nil, 200, contains(`"any"`)},
		{"accounts: of a missing resource", "admin", "GET", "/api/v1/resources/nothing/accounts", nil, 404, nil},
		{"accounts: add with password", "admin", "POST", "/api/v1/resources/web/accounts", api.CreateAccountRequest{Name: "svc", Username: "svc", Password: "s3cret-value", Description: "service"}, 200, lacks("s3cret-value")},
		{"accounts: listed without the secret", "admin", "GET", "/api/v1/resources/web/accounts", nil, 200, func(t *testing.T, out []byte) {
			contains(`"has_password":true`, `"service"`)(t, out)
			lacks("s3cret-value")(t, out)
		}},
		{"accounts: duplicate", "admin", "POST", "/api/v1/resources/web/accounts", api.CreateAccountRequest{Name: "svc"}, 409, nil},
		{"accounts: bad name", "admin", "POST", "/api/v1/resources/web/accounts", api.CreateAccountRequest{Name: "a/b"}, 400, nil},
		{"accounts: keys on tcp", "admin", "POST", "/api/v1/resources/web/accounts", api.CreateAccountRequest{Name: "k", Auth: "key"}, 400, nil},
		{"accounts: by a user", "alice", "POST", "/api/v1/resources/web/accounts", api.CreateAccountRequest{Name: "mine"}, 403, nil},
		{"accounts: update nothing", "admin", "PATCH", "/api/v1/resources/web/accounts/svc", api.AccountUpdate{}, 400, nil},
		{"accounts: update", "admin", "PATCH", "/api/v1/resources/web/accounts/svc", api.AccountUpdate{Description: ptr("changed"), RequireMFA: ptr(true)}, 200, contains("changed", `"require_mfa":true`)},
		{"accounts: update missing", "admin", "PATCH", "/api/v1/resources/web/accounts/nobody", api.AccountUpdate{Description: ptr("x")}, 404, nil},
		{"accounts: rotate a tcp account", "admin", "POST", "/api/v1/resources/web/accounts/svc/rotate", nil, 400, nil},
		{"accounts: delete", "admin", "DELETE", "/api/v1/resources/web/accounts/svc", nil, 200, nil},
		{"accounts: delete again", "admin", "DELETE", "/api/v1/resources/web/accounts/svc", nil, 404, nil},
		{"resources: delete web", "admin", "DELETE", "/api/v1/resources/web", nil, 200, nil},
		{"resources: delete web again", "admin", "DELETE", "/api/v1/resources/web", nil, 404, nil},

		{"catalog: alice sees what her role grants", "alice", "GET", "/api/v1/catalog", nil, 200, func(t *testing.T, out []byte) {
			contains(`"echo"`, `"require_reason":true`, `"gateway_online":true`)(t, out)
		}},
		{"catalog: an auditor is granted nothing", "audra", "GET", "/api/v1/catalog", nil, 200, lacks(`"echo"`)},

		{"audit: list", "audra", "GET", "/api/v1/audit", nil, 200, contains("user.create", "role.create", "resource.create")},
		{"audit: by actor and action", "admin", "GET", "/api/v1/audit?user=admin&action=role", nil, 200, func(t *testing.T, out []byte) {
			contains("role.create", "role.delete")(t, out)
			lacks("resource.create")(t, out)
		}},
		{"audit: limit", "admin", "GET", "/api/v1/audit?limit=1&since=1h", nil, 200, nil},
		{"audit: bad limit", "admin", "GET", "/api/v1/audit?limit=zero", nil, 400, nil},
		{"audit: bad since", "admin", "GET", "/api/v1/audit?since=-1h", nil, 400, nil},
		{"audit: a user may not read", "alice", "GET", "/api/v1/audit", nil, 403, nil},
		{"audit: verify", "audra", "GET", "/api/v1/audit/verify", nil, 200, contains(`"ok":true`)},

		// A role in use may go; its users' tokens end with it.
		{"roles: delete one in use", "admin", "DELETE", "/api/v1/roles/echoers", nil, 200, nil},
		{"roles: its user's token ended", "alice", "GET", "/api/v1/auth/whoami", nil, 401, nil},
	})
}

// TestLoginAndTokens: logging in and out, changing passwords, and what a
// revoked or a disabled user's token still opens.
func TestLoginAndTokens(t *testing.T) {
	e := servertest.New(t)
	alice, pw := e.AddUser(t, "alice", "user")
	ctx := context.Background()

	if _, err := e.TryLogin("alice", "wrong-password-123"); servertest.Status(err) != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := e.TryLogin("nobody", "wrong-password-123"); servertest.Status(err) != http.StatusUnauthorized {
		t.Fatalf("unknown user: %v", err)
	}
	// A second login, then logout of the first: the second still works.
	second := e.Login(t, "alice", pw)
	if err := alice.Do(ctx, "POST", "/api/v1/auth/logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.Do(ctx, "GET", "/api/v1/auth/whoami", nil, nil); servertest.Status(err) != http.StatusUnauthorized {
		t.Fatalf("whoami after logout: %v", err)
	}
	if err := second.Do(ctx, "GET", "/api/v1/auth/whoami", nil, nil); err != nil {
		t.Fatalf("the other token after logout: %v", err)
	}
	// Password changes: a short one, a wrong current one, then a good one.
	for _, tt := range []struct {
		req  api.ChangePasswordRequest
		want int
	}{
		{api.ChangePasswordRequest{Current: pw, New: "short"}, 400},
		{api.ChangePasswordRequest{Current: "not-the-password", New: "a-long-new-password"}, 401},
		{api.ChangePasswordRequest{Current: pw, New: "a-long-new-password"}, 200},
	} {
		err := second.Do(ctx, "POST", "/api/v1/auth/password", tt.req, nil)
		if got := servertest.Status(err); got != tt.want {
			t.Errorf("change password %+v: %d (%v), want %d", tt.req, got, err, tt.want)
		}
	}
	third := e.Login(t, "alice", "a-long-new-password")
	// Revoking every token of alice (as admin) ends them all.
	var rev api.RevokeTokensResponse
	e.Do(t, e.Client, "DELETE", "/api/v1/users/alice/tokens", nil, &rev)
	if rev.Revoked < 1 {
		t.Fatalf("revoked %d tokens", rev.Revoked)
	}
	if err := third.Do(ctx, "GET", "/api/v1/auth/whoami", nil, nil); servertest.Status(err) != http.StatusUnauthorized {
		t.Fatalf("whoami with a revoked token: %v", err)
	}
	// A disabled user cannot log in.
	fourth := e.Login(t, "alice", "a-long-new-password")
	e.Do(t, e.Client, "POST", "/api/v1/users/alice/disable", nil, nil)
	if _, err := e.TryLogin("alice", "a-long-new-password"); servertest.Status(err) != http.StatusUnauthorized && servertest.Status(err) != http.StatusForbidden {
		t.Fatalf("login of a disabled user: %v", err)
	}
	if err := fourth.Do(ctx, "GET", "/api/v1/auth/whoami", nil, nil); err == nil {
		t.Fatal("a disabled user's token still works")
	}
	// A new user must change the password first.
	var nu api.CreateUserResponse
	e.Do(t, e.Client, "POST", "/api/v1/users", api.CreateUserRequest{Name: "newbie"}, &nu)
	newbie := e.Login(t, "newbie", nu.Password)
	if err := newbie.Do(ctx, "GET", "/api/v1/catalog", nil, nil); servertest.Status(err) != http.StatusForbidden {
		t.Fatalf("catalog before the first password change: %v", err)
	}
}
