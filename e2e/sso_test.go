package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// hydra is Ory Hydra (built by scripts/peers into .cache/peers), the
// OpenID provider of the SSO tests, with an in-memory database. The test
// is its login and consent app: loginApp answers hydra's challenges
// through the admin API for whichever identity the test set.
type hydra struct {
	t       *testing.T
	issuer  string // http://127.0.0.1:PORT
	admin   string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *syncBuf
	stopped bool

	mu sync.Mutex
	id identity // who logs in next
}

// identity is who the provider says logs in: its subject and claims.
type identity struct {
	Subject  string
	Username string
	Email    string
	Groups   []string
	AMR      []string
	// Reject, when set, has the login app refuse with this error.
	Reject string
}

const hydraClientID, hydraClientSecret = "pamd-e2e", "hydra-client-secret-e2e-Zq81"

func startHydra(t *testing.T, pamdURL string) *hydra { return startHydraWith(t, pamdURL, nil, nil) }

// startHydraWith starts hydra with extra settings in its environment and,
// when tamper is given, behind it: the issuer is then the proxy's URL.
func startHydraWith(t *testing.T, pamdURL string, extraEnv []string, tamper *tamperProxy) *hydra {
	bin := filepath.Join(repoRoot(), ".cache", "peers", "hydra")
	_, err := os.Stat(bin)
	needPeers(t, "Ory Hydra ("+bin+")", err == nil)
	pub, adm := freePort(t), freePort(t)
	h := &hydra{t: t, issuer: "http://" + pub, admin: "http://" + adm, done: make(chan struct{}), log: &syncBuf{}}
	if tamper != nil {
		h.issuer = tamper.start(t, pub)
	}
	app := &http.Server{Addr: freePort(t), Handler: h.loginApp(), ReadHeaderTimeout: 5 * time.Second}
	lnDone := make(chan struct{})
	go func() { app.ListenAndServe(); close(lnDone) }()
	t.Cleanup(func() { app.Close(); <-lnDone })
	pubHost, pubPort, _ := strings.Cut(pub, ":")
	admHost, admPort, _ := strings.Cut(adm, ":")
	h.cmd = exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	h.cmd.Env = append(os.Environ(), "DSN=memory", "URLS_SELF_ISSUER="+h.issuer, "URLS_LOGIN=http://"+app.Addr+"/login",
		"URLS_CONSENT=http://"+app.Addr+"/consent", "SERVE_PUBLIC_HOST="+pubHost, "SERVE_PUBLIC_PORT="+pubPort,
		"SERVE_ADMIN_HOST="+admHost, "SERVE_ADMIN_PORT="+admPort, "SECRETS_SYSTEM=e2e-hydra-system-secret-0123456789",
		"URLS_SELF_PUBLIC="+h.issuer, "LOG_LEVEL=warn")
	h.cmd.Env = append(h.cmd.Env, extraEnv...)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.cmd.Wait(); close(h.done) }()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("hydra log:\n%s", lastLines(h.log.String(), 30))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready: %v\n%s", err, h.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Hydra makes its signing keys after it says it is ready; on a loaded
	// machine that took longer than pamd's key fetch waits (it failed a CI
	// run). Wait until its key set is served.
	for jwks := "http://" + pub + "/.well-known/jwks.json"; ; {
		resp, err := http.Get(jwks)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), `"kid"`) {
				break
			}
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("hydra serves no signing keys: %v\n%s", err, h.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client pamd is: the console's callback and the CLI's loopback
	// redirect (any port, RFC 8252).
	h.adminCall("POST", "/admin/clients", map[string]any{
		"client_id": hydraClientID, "client_secret": hydraClientSecret,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope":         "openid profile email groups offline_access",
		"redirect_uris": []string{pamdURL + "/api/v1/sso/callback", "http://127.0.0.1/callback"},
	}, nil)
	return h
}

func (h *hydra) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cmd.Process.Kill()
	<-h.done
}

func (h *hydra) set(id identity) { h.mu.Lock(); h.id = id; h.mu.Unlock() }
func (h *hydra) who() identity   { h.mu.Lock(); defer h.mu.Unlock(); return h.id }

// adminCall calls hydra's admin API with a JSON body and decodes the answer.
func (h *hydra) adminCall(method, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, h.admin+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("hydra %s %s: %s: %s", method, path, resp.Status, body)
		if out == nil && method == "POST" {
			h.t.Fatal(err)
		}
		return err
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// loginApp is the login and consent app hydra sends browsers to.
func (h *hydra) loginApp() http.Handler {
	mux := http.NewServeMux()
	redirect := func(w http.ResponseWriter, r *http.Request, method, path string, body any) {
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		if err := h.adminCall(method, path, body, &out); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	}
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		id := h.who()
		if id.Reject != "" {
			redirect(w, r, "PUT", "/admin/oauth2/auth/requests/login/reject?login_challenge="+ch,
				map[string]any{"error": "access_denied", "error_description": id.Reject})
			return
		}
		redirect(w, r, "PUT", "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": id.Subject, "amr": id.AMR, "remember": false})
	})
	mux.HandleFunc("/consent", func(w http.ResponseWriter, r *http.Request) {
		ch := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			RequestedScope []string `json:"requested_scope"`
		}
		if err := h.adminCall("GET", "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		id := h.who()
		claims := map[string]any{"preferred_username": id.Username, "email": id.Email, "groups": id.Groups}
		redirect(w, r, "PUT", "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch,
			map[string]any{"grant_scope": req.RequestedScope, "remember": false, "session": map[string]any{"id_token": claims}})
	})
	return mux
}

// ssoEnv is a pamd server (no gateway needed) with SSO set to hydra.
func ssoEnv(t *testing.T, extra ...string) (*env, *hydra) {
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer()
	e.login("admin", adminPassword)
	h := startHydra(t, e.url)
	e.ok("", "roles", "add", "oncall", "--allow", "prod-*/*")
	e.ok(hydraClientSecret+"\n", append([]string{"sso", "set", "--issuer", h.issuer, "--client-id", hydraClientID, "--client-secret-stdin",
		"--map", "ops=oncall", "--map", "admins=admin"}, extra...)...)
	return e, h
}

// browserStep does what a person's browser does with the URL pamd login
// --sso prints: it follows the redirects through the provider's login
// and consent to the CLI's loopback redirect, and returns that page.
func browserStep(t *testing.T, authURL string) (int, string) {
	jar, _ := cookiejar.New(nil) // hydra keeps its CSRF value in a cookie
	c := &http.Client{Jar: jar, Timeout: 90 * time.Second}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("browser step: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cliSSOLogin runs pamd login --sso in configDir, does the browser step,
// and returns the CLI's output and error.
func cliSSOLogin(t *testing.T, e *env, configDir string) (page, out string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pamdBin, "login", "--server", e.url, "--sso", "--no-browser", "--ca-fingerprint", e.fp)
	cmd.Env = append(os.Environ(), "PAMD_CONFIG_DIR="+configDir)
	p := &proc{stdout: &syncBuf{}, stderr: &syncBuf{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	e.mu.Lock()
	e.outputs = append(e.outputs, p)
	e.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var authURL string
	deadline := time.Now().Add(20 * time.Second)
	for authURL == "" {
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
				authURL = l
			}
		}
		select {
		case err := <-exited:
			return "", p.stdout.String() + p.stderr.String(), err
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pamd login --sso printed no URL:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.HasPrefix(authURL, e.url) && !strings.Contains(authURL, "code_challenge_method=S256") {
		t.Fatalf("the login URL asks for no PKCE: %s", authURL)
	}
	_, page = browserStep(t, authURL)
	err = <-exited
	return page, p.stdout.String() + p.stderr.String(), err
}

type auditEvent struct {
	Actor, Action, Target, Outcome, Detail string
}

func audits(t *testing.T, e *env, action string) []auditEvent {
	var all []auditEvent
	e.json(&all, "audit", "list", "--action", action, "-o", "json")
	return all
}

func hasAudit(evs []auditEvent, outcome, detail string) bool {
	for _, ev := range evs {
		if ev.Outcome == outcome && strings.Contains(ev.Detail, detail) {
			return true
		}
	}
	return false
}

type userRow struct {
	Name     string
	Roles    []string
	SSO      bool
	Disabled bool
}

func userNamed(t *testing.T, e *env, name string) userRow {
	var users []userRow
	e.json(&users, "users", "list", "-o", "json")
	for _, u := range users {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no user %s in %+v", name, users)
	return userRow{}
}

// TestSSOLoginFromTheCLI: pamd login --sso through a real provider, the
// user made at the first login, roles from groups re-evaluated at each
// login, users sync, a disabled user kept out, a local name not taken
// over, the provider's refusal and outage worded, and the client secret
// nowhere.
func TestSSOLoginFromTheCLI(t *testing.T) {
	t.Parallel()
	e, h := ssoEnv(t)
	var view map[string]any
	e.json(&view, "sso", "show", "-o", "json")
	if view["issuer"] != h.issuer || view["has_client_secret"] != true || view["cli_redirect_uri"] != "http://127.0.0.1/callback" {
		t.Fatalf("sso show: %v", view)
	}

	// First login: alice is created, SSO-marked, with the default role and
	// the role her group maps to.
	h.set(identity{Subject: "sub-alice-1", Username: "alice", Email: "alice@example.test", Groups: []string{"ops", "staff"}})
	aliceDir := filepath.Join(e.dir, "alice")
	page, out, err := cliSSOLogin(t, e, aliceDir)
	if err != nil || !strings.Contains(out, "as alice (roles: user, oncall)") || !strings.Contains(page, "logged in as alice") {
		t.Fatalf("first SSO login: %v\n%s\npage: %s", err, out, page)
	}
	u := userNamed(t, e, "alice")
	if !u.SSO || strings.Join(u.Roles, ",") != "user,oncall" {
		t.Fatalf("alice after the first login: %+v", u)
	}
	alice := &env{t: t, url: e.url, fp: e.fp, configDir: aliceDir}
	if got := alice.ok("", "whoami"); !strings.Contains(got, "alice") {
		t.Fatalf("whoami with the SSO token: %s", got)
	}
	// The settings are the admins'.
	if got := alice.fails("", "sso", "show"); !strings.Contains(got, "permission denied") {
		t.Fatalf("sso show as a user: %s", got)
	}
	// An SSO user has no password to log in with.
	pw := &env{t: t, url: e.url, fp: e.fp, configDir: filepath.Join(e.dir, "pw")}
	if got := pw.fails("anything-at-all-1\n", "login", "--server", e.url, "--user", "alice", "--password-stdin", "--ca-fingerprint", e.fp); !strings.Contains(got, "invalid username or password") {
		t.Fatalf("password login of an SSO user: %s", got)
	}
	if !hasAudit(audits(t, e, "auth.login"), "failure", "SSO user") {
		t.Fatal("the refused password login of an SSO user is not audited as such")
	}
	if !hasAudit(audits(t, e, "user.create"), "success", "first SSO login") || !hasAudit(audits(t, e, "sso.login"), "success", "groups: ops,staff") {
		t.Fatal("the first SSO login or the user's creation is not audited")
	}

	// Out of the group: the next login takes the role away, and the token
	// of the first login (granted under it) stops working.
	h.set(identity{Subject: "sub-alice-1", Username: "alice", Email: "alice@example.test", Groups: []string{"staff"}})
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "alice2")); err != nil || !strings.Contains(out, "as alice (roles: user)") {
		t.Fatalf("second SSO login: %v\n%s", err, out)
	}
	if got := alice.fails("", "whoami"); !strings.Contains(got, "token is not valid") {
		t.Fatalf("the token from before the lost role still works: %s", got)
	}
	if !hasAudit(audits(t, e, "user.update"), "success", "roles removed: oncall") {
		t.Fatal("the role change at login is not audited")
	}
	// Back in the group, then users sync: the token ends.
	h.set(identity{Subject: "sub-alice-1", Username: "alice", Email: "alice@example.test", Groups: []string{"ops"}})
	if _, out, err := cliSSOLogin(t, e, aliceDir); err != nil || !strings.Contains(out, "roles: user, oncall") {
		t.Fatalf("third SSO login: %v\n%s", err, out)
	}
	if got := e.ok("", "users", "sync", "alice"); !strings.Contains(got, "1 tokens revoked") && !strings.Contains(got, "tokens revoked") {
		t.Fatalf("users sync: %s", got)
	}
	if got := alice.fails("", "whoami"); !strings.Contains(got, "token is not valid") {
		t.Fatalf("the token survived users sync: %s", got)
	}
	if got := e.fails("", "users", "sync", "admin"); !strings.Contains(got, "local user") {
		t.Fatalf("users sync of a local user: %s", got)
	}

	// Disabled in pamd wins over the provider.
	e.ok("", "users", "disable", "alice")
	if _, out, err := cliSSOLogin(t, e, aliceDir); err == nil || !strings.Contains(out, "user alice is disabled in pamd") {
		t.Fatalf("a disabled user's SSO login: %v\n%s", err, out)
	}
	// An identity named like a local user does not become it.
	h.set(identity{Subject: "sub-mallory", Username: "admin", Groups: []string{"admins"}})
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "mallory")); err == nil || !strings.Contains(out, "user name admin is taken") {
		t.Fatalf("an SSO identity named admin: %v\n%s", err, out)
	}
	// The provider's refusal reaches the person and the audit log.
	h.set(identity{Reject: "account locked by the e2e provider"})
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "rej")); err == nil || !strings.Contains(out, "access_denied") || !strings.Contains(out, "account locked by the e2e provider") {
		t.Fatalf("a login the provider refused: %v\n%s", err, out)
	}
	if !hasAudit(audits(t, e, "sso.login"), "failure", "account locked by the e2e provider") {
		t.Fatal("the provider's refusal is not audited")
	}

	// The secret is in no answer, output, log or audit event.
	var events []map[string]any
	e.json(&events, "audit", "list", "-o", "json")
	ev, _ := json.Marshal(events)
	for what, text := range map[string]string{"sso show": fmt.Sprint(view), "audit": string(ev), "outputs": e.allOutput(), "server log": e.server.stderr.String()} {
		if strings.Contains(text, hydraClientSecret) {
			t.Fatalf("the client secret is in the %s", what)
		}
	}

	// Hydra has no device grant: said so.
	if got := e.fails("", "login", "--server", e.url, "--sso", "--device", "--ca-fingerprint", e.fp); !strings.Contains(got, "offers no device authorization grant") {
		t.Fatalf("--device without the grant at the provider: %s", got)
	}

	// The provider down: a readable error, at once.
	h.stop()
	time.Sleep(1100 * time.Millisecond) // pamd reads discovery at most once a second
	start := time.Now()
	_, out, err = cliSSOLogin(t, e, filepath.Join(e.dir, "down"))
	if err == nil || !strings.Contains(out, "the SSO provider "+h.issuer+" cannot be reached") || time.Since(start) > 20*time.Second {
		t.Fatalf("login with the provider down (%s): %v\n%s", time.Since(start), err, out)
	}
	if got := e.fails(hydraClientSecret+"\n", "sso", "set", "--issuer", h.issuer, "--client-id", hydraClientID, "--client-secret-stdin"); !strings.Contains(got, "cannot be reached") {
		t.Fatalf("sso set with the provider down: %s", got)
	}
	e.ok("", "sso", "disable")
	if got := e.ok("", "sso", "show"); !strings.Contains(got, "off") {
		t.Fatalf("sso show after disable: %s", got)
	}
}

// TestSSOLoginInTheConsole: "Sign in with SSO" in headless Chromium
// through the provider's login and consent, ending with the console's
// session (cookie and CSRF token) as a password login does.
func TestSSOLoginInTheConsole(t *testing.T) {
	t.Parallel()
	e, h := ssoEnv(t)
	h.set(identity{Subject: "sub-bob-7", Username: "bob", Email: "bob@example.test", Groups: []string{"ops"}})
	ctx := browser(t)
	jsErrors := pageErrors(ctx)
	// The admin's settings form: the secret is not shown, and a change
	// saved there without it keeps it.
	run(t, ctx, "the SSO settings form",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", adminPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("nav a[href='#/sso']", chromedp.ByQuery),
		chromedp.WaitVisible("main table", chromedp.ByQuery), // the catalog has loaded: nothing renders over the next page
		chromedp.Click("nav a[href='#/sso']", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='SSO settings']", chromedp.ByQuery),
	)
	checkPage(t, ctx, e.url, "sso") // no null or undefined shown, no error, no sideways scroll
	var secretField, issuerField string
	run(t, ctx, "read the form", chromedp.Value("#f-client_secret", &secretField, chromedp.ByQuery), chromedp.Value("#f-issuer", &issuerField, chromedp.ByQuery))
	if secretField != "" || issuerField != h.issuer || strings.Contains(textOf(t, ctx, "main"), hydraClientSecret) {
		t.Fatalf("the settings form: issuer %q, secret field %q", issuerField, secretField)
	}
	run(t, ctx, "save the form",
		chromedp.SetValue("#f-mfa_max_age", "15m", chromedp.ByQuery),
		chromedp.Click("form[aria-label='SSO settings'] button[type=submit]", chromedp.ByQuery),
		chromedp.Sleep(500*time.Millisecond),
	)
	var view map[string]any
	e.waitFor("the form's change", 10*time.Second, func() bool {
		e.json(&view, "sso", "show", "-o", "json")
		return view["mfa_max_age"] == "15m0s"
	})
	if view["has_client_secret"] != true || len(view["map"].([]any)) != 2 {
		t.Fatalf("after saving the form: %v", view)
	}
	run(t, ctx, "log the admin out", chromedp.Click("#me button", chromedp.ByQuery), chromedp.WaitVisible("#sso-login", chromedp.ByQuery))
	run(t, ctx, "sign in with SSO",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#sso-login", chromedp.ByQuery),
		chromedp.Click("#sso-login", chromedp.ByQuery),
		chromedp.WaitVisible("#me", chromedp.ByQuery),
	)
	if me := textOf(t, ctx, "#me"); !strings.Contains(me, "bob (user, oncall)") {
		t.Fatalf("after the SSO login the console shows %q", me)
	}
	// The session is the console's: state changes need its CSRF token.
	if st := fetchStatus(t, ctx, "POST", "/api/v1/auth/logout", false); st != http.StatusForbidden {
		t.Fatalf("a state change without the CSRF token: %d", st)
	}
	if u := userNamed(t, e, "bob"); !u.SSO {
		t.Fatalf("bob is not marked as an SSO user: %+v", u)
	}
	// Log out, and the provider refuses: the login page says why.
	run(t, ctx, "log out", chromedp.Click("#me button", chromedp.ByQuery), chromedp.WaitVisible("#sso-login", chromedp.ByQuery))
	h.set(identity{Reject: "no console for you"})
	run(t, ctx, "a refused SSO login",
		chromedp.Click("#sso-login", chromedp.ByQuery),
		chromedp.WaitVisible("#sso-error", chromedp.ByQuery))
	if msg := textOf(t, ctx, "#sso-error"); !strings.Contains(msg, "no console for you") {
		t.Fatalf("the refusal shows as %q", msg)
	}
	// Shown once; and no link can put its own text there.
	var left int
	run(t, ctx, "the login page again",
		chromedp.Navigate(e.url+"/?sso_error=call+555-0100#/login"), chromedp.WaitVisible("#sso-login", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#sso-error").length`, &left))
	if left != 0 {
		t.Fatal("the login page shows an SSO error again, or one a link brought")
	}
	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

// TestSSOMFAClaim: an account with --require-mfa takes a recent MFA at
// the provider (amr) in place of a pamd TOTP code when --require-mfa-claim
// is set; without it in amr, the session is refused with what to do.
func TestSSOMFAClaim(t *testing.T) {
	t.Parallel()
	e, h := ssoEnv(t, "--require-mfa-claim", "--mfa-max-age", "5m")
	e.startGateway("gw1")
	e.addEcho("prod-echo", "mfa", "pw-mfa-e2e-1", "--require-mfa")
	carol := &env{t: t, url: e.url, fp: e.fp, configDir: filepath.Join(e.dir, "carol")}
	h.set(identity{Subject: "sub-carol", Username: "carol", Groups: []string{"ops"}, AMR: []string{"pwd"}})
	if _, out, err := cliSSOLogin(t, e, carol.configDir); err != nil {
		t.Fatalf("SSO login: %v\n%s", err, out)
	}
	if got := carol.fails("", "connect", "prod-echo/mfa", "-o", "json"); !strings.Contains(got, "requires MFA") || !strings.Contains(got, "5m0s") {
		t.Fatalf("connect without an MFA at the provider: %s", got)
	}
	h.set(identity{Subject: "sub-carol", Username: "carol", Groups: []string{"ops"}, AMR: []string{"pwd", "mfa"}})
	if _, out, err := cliSSOLogin(t, e, carol.configDir); err != nil {
		t.Fatalf("SSO login with MFA: %v\n%s", err, out)
	}
	c := carol.connect("prod-echo/mfa")
	echoes(t, c.addr(), "mfa by the provider")
	if !hasAudit(audits(t, e, "access.grant"), "success", "MFA by the SSO provider") {
		t.Fatal("the grant does not say the provider's MFA stood for the code")
	}
}

// tamperProxy stands between pamd and the provider (as a compromised
// network or a misconfigured provider would) and can hold back the token
// endpoint's answer or put another ID token in it.
type tamperProxy struct {
	mu    sync.Mutex
	delay time.Duration
	swap  string // an ID token to put in place of the provider's
}

func (p *tamperProxy) start(t *testing.T, upstream string) string {
	addr := freePort(t)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/oauth2/token" || resp.StatusCode != 200 {
			return nil
		}
		p.mu.Lock()
		delay, swap := p.delay, p.swap
		p.mu.Unlock()
		time.Sleep(delay)
		if swap == "" {
			return nil
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		resp.Body.Close()
		body["id_token"] = swap
		b, _ := json.Marshal(body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + addr
}

// idTokenFor runs the authorization code flow for another client of the
// provider, as another application would, and returns its ID token.
func idTokenFor(t *testing.T, h *hydra, clientID, secret string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: secret, Scopes: []string{"openid"},
		Endpoint:    oauth2.Endpoint{AuthURL: h.issuer + "/oauth2/auth", TokenURL: h.issuer + "/oauth2/token"},
		RedirectURL: "http://" + ln.Addr().String() + "/callback"}
	if st, page := browserStep(t, conf.AuthCodeURL("state-of-the-other-app", oauth2.SetAuthURLParam("nonce", "nonce-of-the-other-app"))); st != 200 {
		t.Fatalf("the other app's login: %d %s", st, page)
	}
	tok, err := conf.Exchange(context.Background(), <-codes)
	if err != nil {
		t.Fatalf("the other app's exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the other app got no ID token")
	}
	return raw
}

// TestSSORefusesWrongAudienceAndExpiredTokens: ID tokens the provider
// really signed are refused when they were issued to another client, or
// reach pamd after their expiry (hydra issues them for eight seconds
// here, and the proxy holds the answer back eleven: within the 15 s pamd
// waits for a provider).
func TestSSORefusesWrongAudienceAndExpiredTokens(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer()
	e.login("admin", adminPassword)
	tamper := &tamperProxy{}
	h := startHydraWith(t, e.url, []string{"TTL_ID_TOKEN=8s"}, tamper)
	e.ok(hydraClientSecret+"\n", "sso", "set", "--issuer", h.issuer, "--client-id", hydraClientID, "--client-secret-stdin")
	h.set(identity{Subject: "sub-frank", Username: "frank"})
	// The control: untouched, the login works.
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "ok")); err != nil {
		t.Fatalf("login through the proxy: %v\n%s", err, out)
	}
	tamper.mu.Lock()
	tamper.delay = 11 * time.Second
	tamper.mu.Unlock()
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "late")); err == nil || !strings.Contains(out, "token is expired") {
		t.Fatalf("an expired ID token: %v\n%s", err, out)
	}
	tamper.mu.Lock()
	tamper.delay = 0
	tamper.mu.Unlock()
	h.adminCall("POST", "/admin/clients", map[string]any{"client_id": "other-app", "client_secret": "other-app-secret-1",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}, "scope": "openid",
		"redirect_uris": []string{"http://127.0.0.1/callback"}}, nil)
	other := idTokenFor(t, h, "other-app", "other-app-secret-1")
	tamper.mu.Lock()
	tamper.swap = other
	tamper.mu.Unlock()
	if _, out, err := cliSSOLogin(t, e, filepath.Join(e.dir, "aud")); err == nil || !strings.Contains(out, `expected audience "pamd-e2e"`) {
		t.Fatalf("an ID token of another client: %v\n%s", err, out)
	}
	evs := audits(t, e, "sso.login")
	if !hasAudit(evs, "failure", "token is expired") || !hasAudit(evs, "failure", "expected audience") {
		t.Fatalf("the refusals are not audited: %+v", evs)
	}
}

// startZitadelOP starts the example OpenID provider of zitadel/oidc
// (built by scripts/peers): the one with a device authorization grant.
// Its client "device" (secret "secret") may use it. Its one user, dave
// (password verysecure), has his name for an ID: the example's device
// flow takes the name it was given for the subject it looks up.
func startZitadelOP(t *testing.T) string {
	bin := filepath.Join(repoRoot(), ".cache", "peers", "zitadel-op")
	_, err := os.Stat(bin)
	needPeers(t, "the zitadel/oidc example server ("+bin+")", err == nil)
	_, port, _ := strings.Cut(freePort(t), ":")
	users := filepath.Join(t.TempDir(), "users.json")
	os.WriteFile(users, []byte(`{"dave": {"ID": "dave", "Username": "dave", "Password": "verysecure", "FirstName": "Dave",
		"LastName": "Ops", "Email": "dave@example.test", "EmailVerified": true, "PreferredLanguage": "en"}}`), 0o600)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+port, "USERS_FILE="+users)
	log := &syncBuf{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("zitadel example server log:\n%s", lastLines(log.String(), 20))
		}
	})
	issuer := "http://localhost:" + port + "/" // as the example names itself
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(issuer + ".well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return issuer
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the zitadel example server is not up: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSSODeviceLogin: pamd login --sso --device prints a code; the person
// enters it at the provider on another device (here an HTTP client doing
// the provider's pages) and the CLI ends logged in.
func TestSSODeviceLogin(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer()
	e.login("admin", adminPassword)
	issuer := startZitadelOP(t)
	e.ok("secret\n", "sso", "set", "--issuer", issuer, "--client-id", "device", "--client-secret-stdin", "--scopes", "openid,profile,email")
	dev := &env{t: t, url: e.url, fp: e.fp, configDir: filepath.Join(e.dir, "device")}
	p := dev.start(nil, "login", "--server", e.url, "--sso", "--device", "--ca-fingerprint", e.fp)
	var code, page string
	dev.waitFor("the user code", 20*time.Second, func() bool {
		out := p.stderr.String()
		if _, after, ok := strings.Cut(out, "and enter the code "); ok {
			code = strings.Fields(after)[0]
		}
		if _, after, ok := strings.Cut(out, "On any device, open\n"); ok {
			page = strings.TrimSpace(strings.SplitN(after, "\n", 2)[0])
		}
		return code != "" && page != ""
	})
	// The other device: the provider's code page, its login, "Allow".
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.PostForm(strings.TrimSuffix(page, "/")+"/login", url.Values{"user_code": {code}, "username": {"dave"}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Welcome back dave") {
		t.Fatalf("the provider's device login: %s", b)
	}
	if resp, err = c.Get(strings.TrimSuffix(page, "/") + "/confirm?action=allowed"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("pamd login --sso --device did not finish:\n%s", p.stderr.String())
	}
	if p.err != nil || !strings.Contains(p.stdout.String(), "as dave (roles: user)") {
		t.Fatalf("device login: %v\n%s%s", p.err, p.stdout.String(), p.stderr.String())
	}
	if got := dev.ok("", "whoami"); !strings.Contains(got, "dave") {
		t.Fatalf("whoami after the device login: %s", got)
	}
}
