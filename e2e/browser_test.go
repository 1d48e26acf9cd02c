package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// browser starts headless Chromium (Debian's package) for the console.
func browser(t *testing.T) context.Context {
	_, err := exec.LookPath("chromium")
	needPeers(t, "chromium", err == nil)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("ignore-certificate-errors", true), // the test server's CA is not in the system store
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser on this context: the first Run binds its lifetime.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// confirm() dialogs are accepted, as a person clicking OK would.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true))
		}
	})
	return ctx
}

// pageErrors collects what the pages' JavaScript reports: uncaught
// exceptions (and unhandled rejections) and console.error calls.
func pageErrors(ctx context.Context) func() []string {
	var mu sync.Mutex
	var errs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				errs = append(errs, "console.error: "+strings.Join(args, " "))
			}
		}
	})
	return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(errs) }
}

// nullish is a "null" or "undefined" shown as text: a value the page did
// not have.
var nullish = regexp.MustCompile(`\b(null|undefined|NaN|Invalid Date)\b`)

// checkPage opens a console page and checks what shows at the current
// width: no "null" or "undefined", no error box, and no sideways scroll.
func checkPage(t *testing.T, ctx context.Context, url, page string) string {
	t.Helper()
	var text string
	var scrollWidth, innerWidth int
	run(t, ctx, "open "+page, chromedp.Navigate(url+"/#/"+page), chromedp.WaitVisible("main h1", chromedp.ByQuery),
		chromedp.Sleep(400*time.Millisecond), // the parts a view loads after its heading
		chromedp.Evaluate(`document.querySelector("main").innerText`, &text),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
		chromedp.Evaluate(`window.innerWidth`, &innerWidth))
	if m := nullish.FindString(text); m != "" {
		t.Errorf("page %s shows %q:\n%s", page, m, text)
	}
	if scrollWidth > innerWidth {
		shot(t, ctx, "wide-"+strings.ReplaceAll(page, "/", "-"))
		t.Errorf("page %s scrolls sideways at %d px: %d px wide", page, innerWidth, scrollWidth)
	}
	var errorBoxes int
	run(t, ctx, "error boxes on "+page, chromedp.Evaluate(`document.querySelectorAll("main .error").length`, &errorBoxes))
	if errorBoxes > 0 {
		t.Errorf("page %s shows an error:\n%s", page, text)
	}
	return text
}

// pages are the console's pages, for the checks of every page.
var pages = []string{"catalog", "sessions", "resources", "gateways", "audit", "users", "roles", "account"}

func shot(t *testing.T, ctx context.Context, name string) {
	var buf []byte
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, chromedp.FullScreenshot(&buf, 100)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join(repoRoot(), "e2e", "artifacts")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 45*time.Second) // generous: a loaded 2-core machine is slow, a failure is still a failure
	defer cancel()
	if err := chromedp.Run(tctx, actions...); err != nil {
		shot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v", what, err)
	}
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	var s string
	run(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// fetchStatus runs a fetch in the page (with its cookie) and returns the status.
func fetchStatus(t *testing.T, ctx context.Context, method, path string, withCSRF bool) int {
	var status int
	js := fmt.Sprintf(`fetch(%q, {method: %q, credentials: "same-origin", headers: %s, body: %q}).then(r => r.status)`,
		path, method, map[bool]string{true: `{"Content-Type": "application/json", "X-CSRF-Token": state.csrf}`, false: `{"Content-Type": "application/json"}`}[withCSRF], `{"name":"mallory"}`)
	run(t, ctx, "fetch "+path, chromedp.Evaluate(js, &status, awaitPromise))
	return status
}

func TestWebConsoleInARealBrowser(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	// The admin has MFA: the browser login must give a code.
	t0 := time.Now()
	enrollMFA(t, e, adminPassword, t0.Add(-30*time.Second))
	secret := e.mfaSecret
	code, _ := totp.GenerateCode(secret, t0)
	e.login("admin", adminPassword, "--totp", code)
	out := e.ok("", "users", "add", "aud", "--role", "auditor", "-o", "json")
	var aud struct{ Password string }
	json.Unmarshal([]byte(out), &aud)

	ctx := browser(t)
	jsErrors := pageErrors(ctx)
	code2, _ := totp.GenerateCode(secret, t0.Add(30*time.Second))
	run(t, ctx, "log in with password and TOTP",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", adminPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("#f-totp", chromedp.ByQuery),
		chromedp.SendKeys("#f-totp", code2, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("nav a[href='#/resources']", chromedp.ByQuery),
	)
	shot(t, ctx, "catalog")

	// Add an ssh resource and a password account through the forms.
	host, port, _ := strings.Cut(s.addr, ":")
	run(t, ctx, "add a resource",
		chromedp.Navigate(e.url+"/#/resources"),
		chromedp.WaitVisible("form[aria-label='add resource']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add resource'] [name=name]", "web", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add resource'] [name=host]", host, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add resource'] [name=port]", port, chromedp.ByQuery),
		chromedp.Click("form[aria-label='add resource'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='add account']", chromedp.ByQuery),
	)
	if got := textOf(t, ctx, "main"); !strings.Contains(got, "Host key (pinned)") || !strings.Contains(got, "SHA256:") {
		t.Fatalf("resource page lacks the pinned host key:\n%s", got)
	}
	run(t, ctx, "add an account",
		chromedp.SendKeys("form[aria-label='add account'] [name=name]", "ops", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add account'] [name=username]", sshUser, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add account'] [name=password]", sshPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='add account'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='ops']", chromedp.BySearch),
	)
	if strings.Contains(textOf(t, ctx, "main"), sshPassword) {
		t.Fatal("the account's password is shown on the page")
	}
	// A wrong password is logged in with and refused, with the target's
	// reason; stored only when the admin says so.
	const wrong = "not-the-password-9q"
	run(t, ctx, "add an account with a wrong password",
		chromedp.SendKeys("form[aria-label='add account'] [name=name]", "bad", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add account'] [name=username]", sshUser, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add account'] [name=password]", wrong, chromedp.ByQuery),
		chromedp.Click("form[aria-label='add account'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='add account'] .error", chromedp.ByQuery),
	)
	if got := textOf(t, ctx, "form[aria-label='add account'] .error"); !strings.Contains(got, "cannot log in") || !strings.Contains(got, "no-login-check") || strings.Contains(got, wrong) {
		t.Fatalf("the refusal of a wrong password: %q", got)
	}
	run(t, ctx, "store it unchecked",
		chromedp.Click("form[aria-label='add account'] [name=skip_login_check]", chromedp.ByQuery),
		chromedp.Click("form[aria-label='add account'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='bad']", chromedp.BySearch),
	)
	e.ok("", "accounts", "rm", "web/bad")

	// The CAs and the db-client CRL, downloaded from the Certificates page.
	var crl, dbCA string
	run(t, ctx, "download the CAs",
		chromedp.Navigate(e.url+"/#/pki"),
		chromedp.WaitVisible("a[href='/api/v1/ca/db-client/crl?format=pem']", chromedp.ByQuery),
		chromedp.Evaluate(`fetch(document.querySelector("a[href='/api/v1/ca/db-client/crl?format=pem']").href).then((r) => r.text())`, &crl, awaitPromise),
		chromedp.Evaluate(`fetch(document.querySelector("a[href='/api/v1/ca/db-client?format=pem']").href).then((r) => r.text())`, &dbCA, awaitPromise),
	)
	if !strings.HasPrefix(crl, "-----BEGIN X509 CRL-----") || dbCA != e.ok("", "ca", "export", "--type", "db-client") {
		t.Fatalf("the console's CRL %.40q and db-client CA %.40q", crl, dbCA)
	}
	run(t, ctx, "back to the resource", chromedp.Navigate(e.url+"/#/resource/web"), chromedp.WaitVisible("//td[text()='ops']", chromedp.BySearch))

	run(t, ctx, "edit the account",
		chromedp.Click("//td[text()='ops']/following-sibling::td//button[text()='Edit']", chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='edit account ops']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='edit account ops'] [name=description]", "deploy user", chromedp.ByQuery),
		chromedp.Click("form[aria-label='edit account ops'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='deploy user']", chromedp.BySearch),
	)
	shot(t, ctx, "resource")

	// The access command for it.
	run(t, ctx, "see the access command",
		chromedp.Navigate(e.url+"/#/catalog"),
		chromedp.WaitVisible("//td[text()='web/ops']/following-sibling::td/button", chromedp.BySearch),
		chromedp.Click("//td[text()='web/ops']/following-sibling::td/button", chromedp.BySearch),
		chromedp.WaitVisible("#access code.cmd", chromedp.ByQuery),
	)
	if cmd := textOf(t, ctx, "#access code.cmd"); cmd != "pamd ssh web/ops --duration 1h" {
		t.Fatalf("access command %q", cmd)
	}

	// A live session started with pamd ssh shows up live; terminate it from the page.
	send, screen := tmuxSession(t, e, 100, 30, pamdBin+" ssh web/ops --reason browser-test")
	e.waitFor("the remote prompt", 10*time.Second, func() bool { return strings.Contains(screen(), sshUser+"@") })
	send("echo replay-marker-$((40+2))")
	e.waitFor("the marker", 5*time.Second, func() bool { return strings.Contains(screen(), "replay-marker-42") })
	var live []sessionDetail
	e.json(&live, "sessions", "list", "-o", "json")
	if len(live) != 1 {
		t.Fatalf("%d sessions, want the one of pamd ssh", len(live))
	}
	e.waitFor("the recording on the server", 10*time.Second, func() bool {
		cast, _, _ := e.run("", "sessions", "export", live[0].ID, "--format", "asciicast") // fails until the first records are in
		return strings.Contains(cast, "replay-marker-42")
	})
	run(t, ctx, "see the live session",
		chromedp.Navigate(e.url+"/#/sessions"),
		chromedp.WaitVisible("//span[contains(@class,'live')]", chromedp.BySearch),
		chromedp.WaitVisible("//span[contains(@class,'live')]/ancestor::tr//a[text()='recorded']", chromedp.BySearch),
	)
	shot(t, ctx, "sessions")
	run(t, ctx, "terminate it",
		chromedp.Click("//span[contains(@class,'live')]/ancestor::tr//a", chromedp.BySearch),
		chromedp.WaitVisible("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.Click("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.WaitVisible("//h1/span[text()='ended by the user']", chromedp.BySearch), // the admin's own session
	)
	e.waitFor("the shell to be told", 5*time.Second, func() bool { return strings.Contains(screen(), "terminated by admin") })
	shot(t, ctx, "session")

	// Replay shows what was printed, in a real terminal renderer.
	run(t, ctx, "replay the recording",
		chromedp.Click("//a[contains(text(),'Replay')]", chromedp.BySearch),
		chromedp.WaitVisible("#play", chromedp.ByQuery),
		chromedp.Click("#play", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector(".xterm-rows") && document.querySelector(".xterm-rows").textContent.includes("replay-marker-42")`, nil, chromedp.WithPollingTimeout(15*time.Second)),
	)
	shot(t, ctx, "replay")

	// The audit log shows what happened, and the chain verifies.
	run(t, ctx, "read the audit log",
		chromedp.Navigate(e.url+"/#/audit"),
		chromedp.WaitVisible("//td[text()='session.terminate']", chromedp.BySearch),
	)
	if got := textOf(t, ctx, "main"); !strings.Contains(got, "Audit chain intact") || !strings.Contains(got, "resource.create") {
		t.Fatalf("audit page:\n%.500s", got)
	}
	shot(t, ctx, "audit")
	// On a narrow screen (a phone) no page scrolls sideways: wide tables
	// and the replayed terminal scroll inside their own box.
	run(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	for _, page := range append(pages, "resource/web", "session/"+live[0].ID, "replay/"+live[0].ID) {
		checkPage(t, ctx, e.url, page)
		shot(t, ctx, "narrow-"+strings.ReplaceAll(strings.Split(page, "/")[0], "/", "-"))
	}
	checkAccessButtonInView(t, ctx, e.url, "web/ops")
	run(t, ctx, "back to 1280 px", chromedp.EmulateViewport(1280, 900))

	// State changes with the cookie need the CSRF token.
	if st := fetchStatus(t, ctx, "POST", "/api/v1/users", false); st != 403 {
		t.Fatalf("POST without a CSRF token: %d, want 403", st)
	}

	// An auditor sees but cannot change.
	actx := ctx
	run(t, actx, "log out", chromedp.Navigate(e.url+"/#/catalog"), chromedp.WaitVisible("#me button", chromedp.ByQuery),
		chromedp.Click("#me button", chromedp.ByQuery), chromedp.WaitVisible("#f-username", chromedp.ByQuery))
	run(t, actx, "log in as the auditor",
		chromedp.SendKeys("#f-username", "aud", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", aud.Password, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='change password']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='change password'] [name=current]", aud.Password, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='change password'] [name=new]", "auditor-own-password-1", chromedp.ByQuery),
		chromedp.Click("form[aria-label='change password'] button", chromedp.ByQuery),
		chromedp.WaitVisible(".notice", chromedp.ByQuery),
		chromedp.Navigate(e.url+"/#/resources"),
		chromedp.WaitVisible("//a[text()='web']", chromedp.BySearch),
	)
	var forms, terminate int
	run(t, actx, "look for controls", chromedp.Evaluate(`document.querySelectorAll("form[aria-label='add resource'], button.danger").length`, &forms))
	for _, page := range pages {
		checkPage(t, actx, e.url, page)
	}
	run(t, actx, "back to resources", chromedp.Navigate(e.url+"/#/resources"), chromedp.WaitVisible("//a[text()='web']", chromedp.BySearch))
	run(t, actx, "sessions as auditor", chromedp.Navigate(e.url+"/#/sessions"), chromedp.WaitVisible("//td/a", chromedp.BySearch),
		chromedp.Click("//td/a", chromedp.BySearch), chromedp.WaitVisible("h1", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("button.danger").length`, &terminate))
	if forms != 0 || terminate != 0 {
		t.Fatalf("the auditor sees %d change controls on resources and %d on a session", forms, terminate)
	}
	if st := fetchStatus(t, actx, "POST", "/api/v1/users", true); st != 403 {
		t.Fatalf("auditor creating a user: %d, want 403", st)
	}
	shot(t, actx, "auditor")

	// MFA enrollment from the account page: a QR code, then a code to confirm.
	var qr, mfaSecret string
	run(t, actx, "start MFA enrollment",
		chromedp.Navigate(e.url+"/#/account"),
		chromedp.WaitVisible("//button[text()='Enroll an authenticator app']", chromedp.BySearch),
		chromedp.SendKeys("form[aria-label='enroll MFA'] [name=mfa_password]", "auditor-own-password-1", chromedp.ByQuery),
		chromedp.Click("//button[text()='Enroll an authenticator app']", chromedp.BySearch),
		chromedp.WaitVisible("img[alt^='QR code']", chromedp.ByQuery),
		chromedp.AttributeValue("img[alt^='QR code']", "src", &qr, nil, chromedp.ByQuery),
		chromedp.Text("main p code", &mfaSecret, chromedp.ByQuery),
	)
	if !strings.HasPrefix(qr, "data:image/png;base64,") || len(mfaSecret) < 16 {
		t.Fatalf("enrollment shows QR %.40q and secret %q", qr, mfaSecret)
	}
	shot(t, actx, "mfa-enroll")
	mfaCode, _ := totp.GenerateCode(mfaSecret, time.Now())
	run(t, actx, "confirm MFA",
		chromedp.SendKeys("form[aria-label='confirm MFA'] [name=code]", mfaCode, chromedp.ByQuery),
		chromedp.Click("form[aria-label='confirm MFA'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//p[contains(text(),'MFA is on')]", chromedp.BySearch),
	)
	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors on the pages:\n%s", strings.Join(errs, "\n"))
	}
}

// checkAccessButtonInView: on the catalog, the Access button of target is
// on screen and not covered, without scrolling sideways.
func checkAccessButtonInView(t *testing.T, ctx context.Context, url, target string) {
	t.Helper()
	var inView bool
	js := fmt.Sprintf(`(() => {
		const td = [...document.querySelectorAll("main td")].find((c) => c.textContent === %q);
		const b = td && [...td.parentElement.querySelectorAll("button")].find((x) => x.textContent === "Access");
		if (!b) return false;
		window.scrollTo(0, b.getBoundingClientRect().top + window.scrollY - window.innerHeight / 2); // down to it, never sideways
		const r = b.getBoundingClientRect();
		return r.left >= 0 && r.right <= window.innerWidth && document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === b;
	})()`, target)
	run(t, ctx, "the Access button of "+target, chromedp.Navigate(url+"/#/catalog"),
		chromedp.WaitVisible("//td[text()='"+target+"']", chromedp.BySearch), chromedp.Evaluate(js, &inView))
	if !inView {
		shot(t, ctx, "access-button-hidden")
		t.Errorf("the Access button of %s is not in view at this width", target)
	}
}

// TestWebConsoleFirstRun: a new server set up from the console alone. The
// admin logs in with the one-time password, sets their own, and follows
// the console's first steps: a gateway token (the test runs the gateway
// with it, as an operator would inside the network), a resource, an
// account, a role given to a user. The user's access then works; the
// sessions, the audit log (its pages and exports) and every page at phone
// width show what happened, with no JavaScript error.
func TestWebConsoleFirstRun(t *testing.T) {
	t.Parallel()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url, e.configDir = "https://"+e.addr, filepath.Join(e.dir, "cli")
	e.startServer("PAMD_ADMIN_PASSWORD=") // no password given: a one-time one in the data dir
	oneTime, err := os.ReadFile(filepath.Join(e.dir, "server", "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	const adminOwn = "admin-own-password-1"
	ctx := browser(t)
	jsErrors := pageErrors(ctx)
	run(t, ctx, "log in with the one-time password and set one's own",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", strings.TrimSpace(string(oneTime)), chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='change password']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='change password'] [name=current]", strings.TrimSpace(string(oneTime)), chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='change password'] [name=new]", adminOwn, chromedp.ByQuery),
		chromedp.Click("form[aria-label='change password'] button", chromedp.ByQuery),
		chromedp.WaitVisible(".notice", chromedp.ByQuery),
	)

	// The empty server: every page says what there is to do.
	for _, page := range pages {
		checkPage(t, ctx, e.url, page)
	}
	if got := checkPage(t, ctx, e.url, "catalog"); !strings.Contains(got, "Getting started") || !strings.Contains(got, "pamd gateways token --name") {
		t.Fatalf("the first page shows no first steps:\n%s", got)
	}
	shot(t, ctx, "first-run")
	if got := checkPage(t, ctx, e.url, "resources"); !strings.Contains(got, "enroll a gateway first") {
		t.Fatalf("the empty resources page does not say to enroll a gateway:\n%s", got)
	}

	// 1. A gateway: the token the console shows, run as the command says.
	var command string
	run(t, ctx, "create a gateway token",
		chromedp.Navigate(e.url+"/#/gateways"),
		chromedp.WaitVisible("form[aria-label='enroll gateway']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='enroll gateway'] [name=name]", "gw1", chromedp.ByQuery),
		chromedp.Click("form[aria-label='enroll gateway'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='enroll gateway'] code.cmd", chromedp.ByQuery),
		chromedp.Text("form[aria-label='enroll gateway'] code.cmd", &command, chromedp.ByQuery),
	)
	args := strings.Fields(command)
	if len(args) < 4 || args[0] != "pamd" || args[1] != "gateway" || args[2] != "--token" {
		t.Fatalf("the console's gateway command: %q", command)
	}
	e.gateway = e.start(nil, "gateway", "--token", args[3], "--data-dir", filepath.Join(e.dir, "gw1"))
	run(t, ctx, "the console sees the gateway connect",
		chromedp.WaitVisible("//form[@aria-label='enroll gateway']//span[contains(@class,'online')]", chromedp.BySearch))

	// 2. A tcp resource on it; 3. an account, which asks for no secret.
	host, port, _ := strings.Cut(echoServer(t), ":")
	run(t, ctx, "add a resource",
		chromedp.Click("//a[text()='add a resource']", chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='add resource']", chromedp.ByQuery),
		chromedp.SetValue("form[aria-label='add resource'] [name=type]", "tcp", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("form[aria-label='add resource'] [name=type]").dispatchEvent(new Event("change"))`, nil),
		chromedp.SendKeys("form[aria-label='add resource'] [name=name]", "echo", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add resource'] [name=host]", host, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add resource'] [name=port]", port, chromedp.ByQuery),
	)
	var gateways []string
	run(t, ctx, "the gateway choices", chromedp.Evaluate(`[...document.querySelectorAll("form[aria-label='add resource'] [name=gateway] option")].map((o) => o.value)`, &gateways))
	if !slices.Equal(gateways, []string{"gw1"}) {
		t.Fatalf("the resource form offers gateways %q, want the enrolled one", gateways)
	}
	var secretInputs int
	run(t, ctx, "submit the resource",
		chromedp.Click("form[aria-label='add resource'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='add account']", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("form[aria-label='add account'] input:not([name=name]):not([name=description]):not([type=checkbox])").length`, &secretInputs),
	)
	if secretInputs != 0 {
		t.Fatalf("a tcp account form asks for %d user names or secrets", secretInputs)
	}
	run(t, ctx, "add an account",
		chromedp.SendKeys("form[aria-label='add account'] [name=name]", "any", chromedp.ByQuery),
		chromedp.Click("form[aria-label='add account'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='any']", chromedp.BySearch),
	)

	// 4. A role that grants it, given to a new user.
	var userPassword string
	run(t, ctx, "add a role and a user with it",
		chromedp.Navigate(e.url+"/#/roles"),
		chromedp.WaitVisible("form[aria-label='add role']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add role'] [name=name]", "echo-users", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add role'] [name=allow]", "echo/*", chromedp.ByQuery),
		chromedp.Click("form[aria-label='add role'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='echo-users']", chromedp.BySearch),
		chromedp.Navigate(e.url+"/#/users"),
		chromedp.WaitVisible("form[aria-label='add user']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='add user'] [name=name]", "alice", chromedp.ByQuery),
		chromedp.SetValue("form[aria-label='add user'] [name=roles]", "user, echo-users", chromedp.ByQuery),
		chromedp.Click("form[aria-label='add user'] button", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='add user'] .notice code", chromedp.ByQuery),
		chromedp.Text("form[aria-label='add user'] .notice code", &userPassword, chromedp.ByQuery),
	)
	if got := checkPage(t, ctx, e.url, "catalog"); strings.Contains(got, "Getting started") {
		t.Fatalf("the first steps are still shown once done:\n%s", got)
	}
	run(t, ctx, "open access",
		chromedp.Click("//td[text()='echo/any']/following-sibling::td/button[text()='Access']", chromedp.BySearch),
		chromedp.WaitVisible("#access code.cmd", chromedp.ByQuery),
	)
	if cmd := textOf(t, ctx, "#access code.cmd"); cmd != "pamd connect echo/any --duration 1h" {
		t.Fatalf("access command %q", cmd)
	}

	// The user runs it: the data goes through the gateway the console set up.
	e.fp = strings.TrimSpace(e.fp)
	e.login("alice", userPassword)
	e.ok(userPassword+"\nalice-own-password-1\n", "passwd", "--password-stdin")
	e.login("alice", "alice-own-password-1")
	longReason := "ticket-" + strings.Repeat("x", 300) // one word: the audit Detail must wrap it
	c := e.connect("echo/any", "--reason", longReason)
	echoes(t, c.addr(), "through the console's setup")
	c.proc.cmd.Process.Signal(os.Interrupt)
	<-c.proc.done
	c2 := e.connect("echo/any", "--reason", "second")
	echoes(t, c2.addr(), "again")
	run(t, ctx, "terminate the second session",
		chromedp.Navigate(e.url+"/#/session/"+c2.SessionID),
		chromedp.WaitVisible("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.Click("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.WaitVisible("//h1/span[text()='ended by admin admin']", chromedp.BySearch),
	)
	<-c2.proc.done
	got := checkPage(t, ctx, e.url, "sessions")
	for _, want := range []string{"ended by the user", "ended by admin admin", "none"} { // tcp sessions record nothing
		if !strings.Contains(got, want) {
			t.Errorf("the sessions page lacks %q:\n%s", want, got)
		}
	}
	if !regexp.MustCompile(`\d+s|\d+m \d+s`).MatchString(got) {
		t.Errorf("the sessions page shows no duration:\n%s", got)
	}
	if !tableFits(t, ctx) {
		t.Errorf("a long reason makes the sessions table scroll sideways at 1280 px")
	}
	shot(t, ctx, "first-run-sessions")

	checkAuditPagingAndExport(t, ctx, e.url)
	checkAuditDetailWraps(t, ctx, e.url, longReason)

	run(t, ctx, "390 px", chromedp.EmulateViewport(390, 844))
	for _, page := range append(pages, "resource/echo", "session/"+c2.SessionID) {
		checkPage(t, ctx, e.url, page)
	}
	checkAccessButtonInView(t, ctx, e.url, "echo/any")
	shot(t, ctx, "first-run-narrow-catalog")
	run(t, ctx, "back to 1280 px", chromedp.EmulateViewport(1280, 900))
	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors on the pages:\n%s", strings.Join(errs, "\n"))
	}
}

// echoes sends msg through addr and wants it back.
func echoes(t *testing.T, addr, msg string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo through pamd: %q, %v", buf, err)
	}
}

// checkAuditPagingAndExport: the audit log comes a page at a time, newest
// first, with the filters; the exports hold every matching event.
func checkAuditPagingAndExport(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	const extra = 130 // more than a page of the console (100)
	var created int
	run(t, ctx, "add roles for a long log", chromedp.Evaluate(fmt.Sprintf(`(async () => {
		let n = 0;
		for (let i = 0; i < %d; i++) {
			const r = await fetch("/api/v1/roles", {method: "POST", credentials: "same-origin",
				headers: {"Content-Type": "application/json", "X-CSRF-Token": state.csrf}, body: JSON.stringify({name: "bulk-" + i, allow: ["echo/any"]})});
			if (r.ok) n++;
		}
		return n;
	})()`, extra), &created, awaitPromise))
	if created != extra {
		t.Fatalf("%d of %d roles created", created, extra)
	}
	seqs := func() []int {
		var out []int
		run(t, ctx, "read the audit rows", chromedp.Evaluate(`[...document.querySelectorAll("main tbody tr")].map((tr) => Number(tr.cells[0].textContent))`, &out))
		return out
	}
	run(t, ctx, "filter the audit log",
		chromedp.Navigate(url+"/#/audit"),
		chromedp.WaitVisible("form[aria-label='filter audit']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='filter audit'] [name=action]", "role.create", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='filter audit'] [name=actor]", "admin", chromedp.ByQuery),
		chromedp.Click("form[aria-label='filter audit'] button", chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll("main tbody tr").length === 100`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.WaitVisible("//button[text()='Older events']", chromedp.BySearch),
	)
	first := seqs()
	run(t, ctx, "the next page",
		chromedp.Click("//button[text()='Older events']", chromedp.BySearch),
		chromedp.Poll(`document.querySelectorAll("main tbody tr").length === 131`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.WaitVisible("//span[text()='The oldest event is shown.']", chromedp.BySearch),
	)
	all := seqs()
	if !slices.Equal(all[:100], first) || !slices.IsSortedFunc(all, func(a, b int) int { return b - a }) {
		t.Fatalf("audit pages are not newest first without gaps: %v", all)
	}
	var actions []string
	run(t, ctx, "the actions shown", chromedp.Evaluate(`[...new Set([...document.querySelectorAll("main tbody tr")].map((tr) => tr.cells[3].textContent))]`, &actions))
	if !slices.Equal(actions, []string{"role.create"}) {
		t.Fatalf("the filter let through %q", actions)
	}

	// The export links carry the filters; what they fetch is the whole log.
	var exports map[string]string
	run(t, ctx, "fetch the exports", chromedp.Evaluate(`(async () => {
		const out = {};
		for (const a of document.querySelectorAll("main a[download]")) out[a.textContent] = a.href + "\n" + await (await fetch(a.href)).text();
		return out;
	})()`, &exports, awaitPromise))
	jsonl, csvText := exports["Export JSON lines"], exports["Export CSV"]
	href, lines, _ := strings.Cut(jsonl, "\n")
	if !strings.Contains(href, "format=jsonl") || !strings.Contains(href, "action=role.create") || strings.Count(lines, "\n") != 131 {
		t.Fatalf("JSON lines export %s: %d lines, want 131", href, strings.Count(lines, "\n"))
	}
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		var ev struct{ Action, Hash string }
		if json.Unmarshal([]byte(l), &ev) != nil || ev.Action != "role.create" || ev.Hash == "" {
			t.Fatalf("export line %q", l)
		}
	}
	href, rows, _ := strings.Cut(csvText, "\n")
	if !strings.Contains(href, "format=csv") || !strings.HasPrefix(rows, "seq,time,actor,action,") || strings.Count(rows, "\n") != 132 {
		t.Fatalf("CSV export %s: %d lines, want a header and 131", href, strings.Count(rows, "\n"))
	}
	shot(t, ctx, "audit-paged")
}

// checkAuditDetailWraps: at 1280 px the audit table fits its box: a long
// detail wraps rather than pushing the columns out of view.
func checkAuditDetailWraps(t *testing.T, ctx context.Context, url, word string) {
	t.Helper()
	run(t, ctx, "the audit log of access grants",
		chromedp.Navigate(url+"/#/catalog"), chromedp.WaitVisible("main h1", chromedp.ByQuery),
		chromedp.Navigate(url+"/#/audit"), // a new view: empty filters
		chromedp.WaitVisible("form[aria-label='filter audit']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='filter audit'] [name=action]", "access.grant", chromedp.ByQuery),
		chromedp.Click("form[aria-label='filter audit'] button", chromedp.ByQuery),
		chromedp.Poll(fmt.Sprintf(`document.querySelector("main tbody").textContent.includes(%q)`, word[:40]), nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	shot(t, ctx, "audit-detail")
	if !tableFits(t, ctx) {
		t.Errorf("a long audit detail makes the table scroll sideways at 1280 px")
	}
}

// tableFits says whether the page's first table fits its box, with no
// sideways scroll of its own.
func tableFits(t *testing.T, ctx context.Context) bool {
	t.Helper()
	var fits bool
	run(t, ctx, "measure the table", chromedp.Evaluate(`(() => { const w = document.querySelector("main .table-wrap"); return w.scrollWidth <= w.clientWidth; })()`, &fits))
	return fits
}

// awaitPromise makes chromedp.Evaluate wait for the promise its script returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
