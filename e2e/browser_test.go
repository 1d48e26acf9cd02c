package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
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
	run(t, ctx, "fetch "+path, chromedp.Evaluate(js, &status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
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
	)
	shot(t, ctx, "sessions")
	run(t, ctx, "terminate it",
		chromedp.Click("//span[contains(@class,'live')]/ancestor::tr//a", chromedp.BySearch),
		chromedp.WaitVisible("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.Click("//button[text()='Terminate']", chromedp.BySearch),
		chromedp.WaitVisible("//h1/span[contains(text(),'terminated by admin')]", chromedp.BySearch),
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
	// scroll inside their own box.
	for _, page := range []string{"catalog", "sessions", "resource/web", "audit"} {
		var overflow bool
		run(t, ctx, "narrow "+page, chromedp.EmulateViewport(390, 844),
			chromedp.Navigate(e.url+"/#/"+page), chromedp.WaitVisible("main h1", chromedp.ByQuery),
			chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow))
		shot(t, ctx, "narrow-"+strings.ReplaceAll(page, "/", "-"))
		if overflow {
			t.Errorf("page %s scrolls sideways at 390 px", page)
		}
	}
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
	for _, page := range []string{"resources", "gateways", "users", "roles", "account"} {
		var text string
		run(t, actx, "read "+page+" as the auditor", chromedp.Navigate(e.url+"/#/"+page),
			chromedp.WaitVisible("main h1", chromedp.ByQuery), chromedp.Sleep(300*time.Millisecond),
			chromedp.Evaluate(`document.querySelector("main").innerText`, &text))
		if regexp.MustCompile(`\b(null|undefined)\b`).MatchString(text) {
			t.Errorf("page %s shows a null or undefined:\n%s", page, text)
		}
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
}
