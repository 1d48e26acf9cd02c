package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	"golang.org/x/oauth2"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

func TestParseSettings(t *testing.T) {
	good := api.SSOSettings{Issuer: "https://idp.example.test/realms/x", ClientID: "pamd", ClientSecret: "s3cret"}
	c, err := Parse(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Scopes, ",") != "openid,profile,email,groups" || c.GroupsClaim != "groups" || c.MFAMaxAge != 10*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	withScopes := good
	withScopes.Scopes = []string{"email"}
	if c, _ := Parse(withScopes, nil); strings.Join(c.Scopes, ",") != "openid,email" {
		t.Fatalf("openid is not always asked for: %v", c.Scopes)
	}
	keep := api.SSOSettings{Issuer: good.Issuer, ClientID: "pamd", KeepSecret: true}
	if c, err := Parse(keep, &store.SSOConfig{Issuer: good.Issuer, ClientID: "pamd", ClientSecret: "old"}); err != nil || c.ClientSecret != "old" {
		t.Fatalf("keep the secret: %v %+v", err, c)
	}
	bad := map[string]func(s *api.SSOSettings){
		"no issuer":             func(s *api.SSOSettings) { s.Issuer = "" },
		"plain http":            func(s *api.SSOSettings) { s.Issuer = "http://idp.example.test" },
		"relative issuer":       func(s *api.SSOSettings) { s.Issuer = "idp.example.test" },
		"issuer with a query":   func(s *api.SSOSettings) { s.Issuer = "https://idp.example.test/?x=1" },
		"no client id":          func(s *api.SSOSettings) { s.ClientID = "" },
		"no secret":             func(s *api.SSOSettings) { s.ClientSecret = "" },
		"kept secret, new idp":  func(s *api.SSOSettings) { s.ClientSecret, s.KeepSecret = "", true },
		"scope with a space":    func(s *api.SSOSettings) { s.Scopes = []string{"openid email"} },
		"mapped role bad name":  func(s *api.SSOSettings) { s.Map = []api.SSOGroupRole{{Group: "ops", Role: "on call"}} },
		"mapping without group": func(s *api.SSOSettings) { s.Map = []api.SSOGroupRole{{Role: "oncall"}} },
		"mfa max age too short": func(s *api.SSOSettings) { s.MFAMaxAge = "5s" },
		"mfa max age garbage":   func(s *api.SSOSettings) { s.MFAMaxAge = "soon" },
	}
	for name, mutate := range bad {
		s := good
		mutate(&s)
		if _, err := Parse(s, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// http is allowed on loopback (tests, a provider on the same host).
	local := good
	local.Issuer = "http://127.0.0.1:4444"
	if _, err := Parse(local, nil); err != nil {
		t.Fatalf("loopback http issuer: %v", err)
	}
	// The view never carries the secret.
	b, _ := json.Marshal(View(c))
	if strings.Contains(string(b), "s3cret") {
		t.Fatalf("the view shows the secret: %s", b)
	}
}

// provider is an OpenID provider's discovery and keys (go-oidc's test
// server) with a key it signs with.
type provider struct {
	srv       *httptest.Server
	op        *oidctest.Server
	key       *rsa.PrivateKey
	keyID     string
	discovery atomic.Int32 // discovery documents served
}

func newProvider(t *testing.T) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{key: key, keyID: "k1", op: &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			p.discovery.Add(1)
		}
		p.op.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.op.SetIssuer(p.srv.URL)
	return p
}

func (p *provider) sign(t *testing.T, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return oidctest.SignIDToken(p.key, p.keyID, "RS256", string(b))
}

func newService(t *testing.T) (*Service, *store.Store) {
	st := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := auth.New(st, log, auth.Config{DataDir: t.TempDir(), AdminPassword: "admin-unit-password-1", Out: io.Discard}); err != nil {
		t.Fatal(err) // the built-in roles and the local admin
	}
	return New(Config{Store: st, Log: log}), st
}

// The ID token checks: signature by the provider's keys (a new key is
// fetched when a token names it), issuer, audience, expiry, nonce.
func TestVerifyIDToken(t *testing.T) {
	p := newProvider(t)
	s, _ := newService(t)
	c := &store.SSOConfig{Issuer: p.srv.URL, ClientID: "pamd", GroupsClaim: "roles"}
	ctx := context.Background()
	prov, err := s.discover(ctx, c.Issuer, true)
	if err != nil {
		t.Fatal(err)
	}
	v := prov.Verifier(&oidc.Config{ClientID: c.ClientID})
	now := time.Now()
	claims := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"iss": p.srv.URL, "aud": "pamd", "sub": "u-1", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"nonce": "n-1", "preferred_username": "bad name!", "email": "dora@example.test", "roles": []string{"ops", "dev"},
			"amr": []string{"pwd", "otp"}, "auth_time": now.Add(-time.Minute).Unix()}
		if edit != nil {
			edit(m)
		}
		return m
	}
	id, err := s.verify(ctx, c, v, p.sign(t, claims(nil)), "n-1")
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-1" || strings.Join(id.Names, ",") != "dora" || strings.Join(id.Groups, ",") != "ops,dev" || !hasMFA(id.AMR) ||
		id.AuthTime.Unix() != now.Add(-time.Minute).Unix() {
		t.Fatalf("identity: %+v", id)
	}
	refused := map[string]struct {
		token, nonce, want string
	}{
		"wrong audience": {p.sign(t, claims(func(m map[string]any) { m["aud"] = "another-app" })), "n-1", "audience"},
		"expired":        {p.sign(t, claims(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() })), "n-1", "expired"},
		"wrong issuer":   {p.sign(t, claims(func(m map[string]any) { m["iss"] = "https://evil.example.test" })), "n-1", "different provider"},
		"wrong nonce":    {p.sign(t, claims(nil)), "n-2", "nonce"},
		"no nonce":       {p.sign(t, claims(func(m map[string]any) { delete(m, "nonce") })), "n-1", "nonce"},
		"bad signature":  {p.sign(t, claims(nil))[:20] + "x" + p.sign(t, claims(nil))[21:], "n-1", "refused"},
	}
	for name, tc := range refused {
		_, err := s.verify(ctx, c, v, tc.token, tc.nonce)
		var le *LoginError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal about %s", name, err, tc.want)
		}
	}
	// The provider rotates its key: a token signed with the new one
	// verifies once go-oidc fetched the keys again.
	key2, _ := rsa.GenerateKey(rand.Reader, 2048)
	p.op.PublicKeys = append(p.op.PublicKeys, oidctest.PublicKey{PublicKey: key2.Public(), KeyID: "k2", Algorithm: "RS256"})
	b, _ := json.Marshal(claims(nil))
	if _, err := s.verify(ctx, c, v, oidctest.SignIDToken(key2, "k2", "RS256", string(b)), "n-1"); err != nil {
		t.Fatalf("a token signed by the rotated key: %v", err)
	}
	// A key the provider does not publish is refused.
	key3, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := s.verify(ctx, c, v, oidctest.SignIDToken(key3, "k3", "RS256", string(b)), "n-1"); err == nil {
		t.Fatal("a token signed by an unpublished key was accepted")
	}
}

func TestBeginAndFinishChecks(t *testing.T) {
	p := newProvider(t)
	s, st := newService(t)
	ctx := context.Background()
	if _, _, err := s.Begin(ctx, BeginRequest{Binding: "b"}); !errors.Is(err, ErrOff) {
		t.Fatalf("begin with SSO off: %v", err)
	}
	put(t, st, &store.SSOConfig{Issuer: p.srv.URL, ClientID: "pamd", ClientSecret: "sec", Scopes: DefaultScopes, GroupsClaim: "groups",
		RequireMFAClaim: true, MFAMaxAge: 10 * time.Minute})
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	for _, bad := range []string{"https://127.0.0.1:5000/callback", "http://example.test:5000/callback", "http://127.0.0.1/callback",
		"http://127.0.0.1:5000/other", "http://127.0.0.1:5000/callback?x=1", "http://user@127.0.0.1:5000/callback"} {
		if _, _, err := s.Begin(ctx, BeginRequest{RedirectURI: bad, CodeChallenge: challenge}); err == nil {
			t.Errorf("redirect %s accepted", bad)
		}
	}
	if _, _, err := s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: "short"}); err == nil {
		t.Error("a malformed code challenge was accepted")
	}
	authURL, state, err := s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if q.Get("code_challenge") != challenge || q.Get("code_challenge_method") != "S256" || q.Get("state") != state || q.Get("nonce") == "" ||
		q.Get("max_age") != "600" || q.Get("client_id") != "pamd" || strings.Contains(authURL, "sec") {
		t.Fatalf("authorization URL: %s", authURL)
	}
	// A wrong verifier is refused before any exchange, and the state is spent.
	if _, err := s.Finish(ctx, FinishRequest{State: state, Code: "c", Verifier: oauth2.GenerateVerifier()}); err == nil || !strings.Contains(err.Error(), "PKCE") {
		t.Fatalf("wrong verifier: %v", err)
	}
	if _, err := s.Finish(ctx, FinishRequest{State: state, Code: "c", Verifier: verifier}); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("a spent state: %v", err)
	}
	// The provider's error reaches the person, made printable.
	_, state, _ = s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge})
	_, err = s.Finish(ctx, FinishRequest{State: state, Error: "access_denied", ErrorDescription: "user said no\x1b[2J"})
	if err == nil || !strings.Contains(err.Error(), "access_denied: user said no?[2J") {
		t.Fatalf("provider error: %v", err)
	}
	// One address has at most perSource logins pending: a new one replaces
	// its oldest, and other addresses keep theirs.
	_, other, _ := s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge, Source: "10.0.0.2"})
	_, first, _ := s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge, Source: "10.0.0.1"})
	var last string
	for i := 0; i < perSource; i++ {
		_, last, _ = s.Begin(ctx, BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge, Source: "10.0.0.1"})
	}
	s.mu.Lock()
	_, firstLeft := s.pending[first]
	_, lastLeft := s.pending[last]
	_, otherLeft := s.pending[other]
	s.mu.Unlock()
	if firstLeft || !lastLeft || !otherLeft {
		t.Fatalf("after %d more logins from one address: its first kept %v, its last %v, another address's %v", perSource, firstLeft, lastLeft, otherLeft)
	}
	// A console login finishes only in the browser that began it.
	_, state, _ = s.Begin(ctx, BeginRequest{RedirectURI: p.srv.URL + "/cb", Binding: BindingOf("cookie-1")})
	if _, err := s.Finish(ctx, FinishRequest{State: state, Code: "c", Binding: BindingOf("cookie-2")}); err == nil || !strings.Contains(err.Error(), "another browser") {
		t.Fatalf("another browser: %v", err)
	}
}

func put(t *testing.T, st *store.Store, c *store.SSOConfig) {
	t.Helper()
	if err := st.Update(func(tx *store.Tx) error { return tx.PutSSOConfig(c) }); err != nil {
		t.Fatal(err)
	}
}

// Login makes the user at the first login and re-evaluates its roles at
// every one; a disabled user, a taken name and a user with no role are
// refused.
func TestLoginMapsGroups(t *testing.T) {
	s, st := newService(t)
	err := st.Update(func(tx *store.Tx) error {
		return tx.CreateRole(&store.Role{ID: store.NewID(), Name: "oncall", Allow: []string{"prod/*"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, &store.SSOConfig{Issuer: "https://idp", ClientID: "pamd", DefaultRole: "user", RequireMFAClaim: true, MFAMaxAge: 10 * time.Minute,
		Map: []store.SSOGroupRole{{Group: "ops", Role: "oncall"}, {Group: "ops", Role: "ghost"}}})
	id := &Identity{Issuer: "https://idp", Subject: "s-1", Names: []string{"erin"}, Groups: []string{"ops"}, AMR: []string{"hwk"}, AuthTime: time.Now()}
	out, err := s.Login(id, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !out.Created || strings.Join(out.User.Roles, ",") != "user,oncall" || !out.User.IsSSO() || out.MFAAt.IsZero() || !s.MFAFresh(out.MFAAt) {
		t.Fatalf("first login: %+v %+v", out, out.User)
	}
	if s.MFAFresh(time.Now().Add(-11 * time.Minute)) {
		t.Fatal("an MFA older than the max age counts")
	}
	// The name changes at the provider: the subject still finds erin.
	id.Names, id.Groups, id.AMR = []string{"erin2"}, nil, nil
	out, err = s.Login(id, "10.0.0.1")
	if err != nil || out.Created || out.User.Name != "erin" || strings.Join(out.Removed, ",") != "oncall" || !out.MFAAt.IsZero() {
		t.Fatalf("second login: %v %+v", err, out)
	}
	// No default role and no mapped group: refused.
	put(t, st, &store.SSOConfig{Issuer: "https://idp", ClientID: "pamd", Map: []store.SSOGroupRole{{Group: "ops", Role: "oncall"}}})
	if _, err := s.Login(id, "10.0.0.1"); err == nil || !strings.Contains(err.Error(), "maps to a pamd role") {
		t.Fatalf("no role: %v", err)
	}
	// A local user's name is not taken over.
	if _, err := s.Login(&Identity{Issuer: "https://idp", Subject: "s-2", Names: []string{"admin"}, Groups: []string{"ops"}}, ""); err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("identity named admin: %v", err)
	}
	// Disabled in pamd wins.
	st.Update(func(tx *store.Tx) error {
		u, _ := tx.UserByName("erin")
		u.Disabled = true
		return tx.PutUser(u)
	})
	id.Groups = []string{"ops"}
	if _, err := s.Login(id, ""); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled: %v", err)
	}
	var actions []string
	st.View(func(tx *store.Tx) error {
		return tx.AuditEvents(func(e *store.AuditEvent) bool {
			actions = append(actions, e.Action+":"+e.Outcome)
			return true
		})
	})
	for _, want := range []string{"user.create:success", "sso.login:success", "user.update:success", "sso.login:failure"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("no %s in the audit log: %v", want, actions)
		}
	}
}

// However many logins start, discovery is read at most once a second.
func TestDiscoveryIsRateLimited(t *testing.T) {
	p := newProvider(t)
	s, st := newService(t)
	put(t, st, &store.SSOConfig{Issuer: p.srv.URL, ClientID: "pamd", ClientSecret: "sec", Scopes: DefaultScopes, GroupsClaim: "groups"})
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	for i := 0; i < 50; i++ {
		if _, _, err := s.Begin(context.Background(), BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge}); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.discovery.Load(); n != 1 {
		t.Fatalf("50 logins read discovery %d times, want 1", n)
	}
	time.Sleep(discoverEvery + 100*time.Millisecond)
	s.Begin(context.Background(), BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge})
	if n := p.discovery.Load(); n != 2 {
		t.Fatalf("a login a second later read discovery %d times in all, want 2", n)
	}
	// A provider that is down is said so, and not asked again within the second.
	p.srv.Close()
	time.Sleep(discoverEvery + 100*time.Millisecond)
	for i := 0; i < 3; i++ {
		if _, _, err := s.Begin(context.Background(), BeginRequest{RedirectURI: "http://127.0.0.1:5000/callback", CodeChallenge: challenge}); err == nil || !strings.Contains(err.Error(), "cannot be reached") {
			t.Fatalf("begin with the provider down: %v", err)
		}
	}
}
