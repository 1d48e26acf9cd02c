package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// accessRequest is what pamd requests ... -o json prints.
type accessRequest struct {
	ID              string
	User            string
	State           string
	Reason          string
	Approvals       int
	ApprovalsNeeded int       `json:"approvals_needed"`
	GrantEnds       time.Time `json:"grant_ends"`
	ClosedBy        string    `json:"closed_by"`
	CloseReason     string    `json:"close_reason"`
	Uses            int
	CanReview       bool `json:"can_review"`
	Reviews         []struct{ User, Verdict, Reason string }
}

func (u *userCLI) request(id string) accessRequest {
	u.e.t.Helper()
	var r accessRequest
	if err := json.Unmarshal([]byte(u.ok("", "requests", "show", id, "-o", "json")), &r); err != nil {
		u.e.t.Fatalf("requests show: %v", err)
	}
	return r
}

// auditOf is the audit events of a request (or any target), as
// "ACTION OUTCOME ACTOR" lines.
func (e *env) auditOf(target string) []string {
	e.t.Helper()
	var events []struct{ Actor, Action, Target, Outcome, Detail string }
	e.json(&events, "audit", "list", "--action", "request", "-o", "json")
	var out []string
	for _, ev := range events {
		if ev.Target == target {
			out = append(out, ev.Action+" "+ev.Outcome+" "+ev.Actor)
		}
	}
	return out
}

// A role with request patterns grants nothing standing: the user asks,
// two distinct approvers (never the requester) approve, and only then
// pamd connect works, under the grant, until an admin revokes it.
func TestRequestsTwoApprovalsConnectAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("prod-db", "root", "req-target-secret-1")
	e.ok("", "roles", "add", "leads")
	out := e.ok("", "roles", "add", "oncall", "--request", "prod-*/*", "--approvers", "leads", "--approvals", "2", "--max-duration", "1h", "--require-reason")
	if !strings.Contains(out, "on request: prod-*/*, approved by 2 of leads") {
		t.Fatalf("roles add --request:\n%s", out)
	}
	if errOut := e.fails("", "roles", "add", "bad", "--request", "prod-*/*", "--approvers", "no-such-role"); !strings.Contains(errOut, `no role named "no-such-role"`) {
		t.Fatalf("an approver role that does not exist: %q", errOut)
	}
	alice, _ := e.addLifecycleUser("alice", "user", "oncall")
	bob, _ := e.addLifecycleUser("bob", "user", "leads")
	carol, _ := e.addLifecycleUser("carol", "user", "leads")
	dave, _ := e.addLifecycleUser("dave", "user")

	if ls := alice.ok("", "ls"); !strings.Contains(ls, "prod-db/root") || !strings.Contains(ls, "1h0m0s on request") {
		t.Fatalf("pamd ls before a request:\n%s", ls)
	}
	if ls := dave.ok("", "ls"); strings.Contains(ls, "prod-db") {
		t.Fatalf("pamd ls shows dave a target he may not request:\n%s", ls)
	}
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "needs an approved access request: run pamd requests create prod-db/root") {
		t.Fatalf("connect before any request: %q", errOut)
	}
	if errOut := alice.fails("", "requests", "create", "prod-db/root"); !strings.Contains(errOut, "needs a reason") {
		t.Fatalf("a request without the reason the role wants: %q", errOut)
	}
	if errOut := dave.fails("", "requests", "create", "prod-db/root", "--reason", "x"); !strings.Contains(errOut, "none of your roles") {
		t.Fatalf("a request no role allows: %q", errOut)
	}
	id := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "INC-42 disk full", "--duration", "30m"))
	if errOut := alice.fails("", "requests", "create", "prod-db/root", "--reason", "again"); !strings.Contains(errOut, "you already have request "+id) {
		t.Fatalf("a second request for the same target: %q", errOut)
	}
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "waits for approval: request "+id+" has 0 of 2 approvals") {
		t.Fatalf("connect while pending: %q", errOut)
	}
	// Alice holds leads too from now on: still, she never approves her own.
	e.ok("", "users", "set", "alice", "--add-role", "leads")
	alice.login("alice-own-password-1")
	if errOut := alice.fails("", "requests", "approve", id); !strings.Contains(errOut, "you cannot approve your own request") {
		t.Fatalf("self-approval: %q", errOut)
	}
	if errOut := dave.fails("", "requests", "approve", id); !strings.Contains(errOut, "no request") {
		t.Fatalf("approval by someone who is no approver: %q", errOut)
	}
	if list := bob.ok("", "requests", "list", "--pending"); !strings.Contains(list, id) || !strings.Contains(list, "pending 0/2") || !strings.Contains(list, "INC-42") {
		t.Fatalf("bob's pending list:\n%s", list)
	}
	if out := bob.ok("", "requests", "approve", id, "--reason", "looks right"); !strings.Contains(out, "your approval is 1 of 2") {
		t.Fatalf("first approval: %q", out)
	}
	if errOut := bob.fails("", "requests", "approve", id); !strings.Contains(errOut, "already reviewed") {
		t.Fatalf("the same approver twice: %q", errOut)
	}
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "has 1 of 2 approvals") {
		t.Fatalf("connect with one approval of two: %q", errOut)
	}
	if out := carol.ok("", "requests", "approve", id); !strings.Contains(out, "approved: alice may connect to prod-db/root") {
		t.Fatalf("second approval: %q", out)
	}
	r := alice.request(id)
	if r.State != "approved" || r.Approvals != 2 || time.Until(r.GrantEnds) > 30*time.Minute || time.Until(r.GrantEnds) < 29*time.Minute {
		t.Fatalf("after two approvals: %+v", r)
	}

	if ls := alice.ok("", "ls"); !strings.Contains(ls, "approved until") {
		t.Fatalf("pamd ls under the grant:\n%s", ls)
	}
	// pamd connect uses the grant with no extra flag; its session ends no
	// later than the grant, and carries the request's id and reason.
	c := alice.connect("prod-db/root", "--duration", "2h")
	echoOnce(t, c.addr())
	if c.ExpiresAt.After(r.GrantEnds.Add(time.Second)) {
		t.Fatalf("the session lasts until %s, past the grant's end %s", c.ExpiresAt, r.GrantEnds)
	}
	var sess struct {
		RequestID     string `json:"request_id"`
		RequestReason string `json:"request_reason"`
	}
	e.json(&sess, "sessions", "show", c.SessionID, "-o", "json")
	if sess.RequestID != id || sess.RequestReason != "INC-42 disk full" {
		t.Fatalf("the session's request: %+v", sess)
	}
	if show := e.ok("", "sessions", "show", c.SessionID); !strings.Contains(show, "request:   "+id+" (INC-42 disk full)") {
		t.Fatalf("sessions show:\n%s", show)
	}

	// Only admins revoke; the revocation cuts the session at once.
	if errOut := bob.fails("", "requests", "revoke", id); !strings.Contains(errOut, "permission denied") {
		t.Fatalf("revoke by a non-admin: %q", errOut)
	}
	conn, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("x"))
	revoked := time.Now()
	if out := e.ok("", "requests", "revoke", id, "--reason", "incident closed"); !strings.Contains(out, "1 sessions ended") {
		t.Fatalf("revoke: %q", out)
	}
	if _, err := waitClosed(conn, 10*time.Second); err != nil {
		t.Fatalf("the connection after the revocation: %v", err)
	}
	t.Logf("connection cut %s after pamd requests revoke started", time.Since(revoked).Round(time.Millisecond))
	e.waitEnded(c, "access request "+id+" revoked by admin")
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "needs an approved access request") {
		t.Fatalf("connect after the revocation: %q", errOut)
	}
	r = alice.request(id)
	if r.State != "revoked" || r.ClosedBy != "admin" || r.CloseReason != "incident closed" || r.Uses != 1 || len(r.Reviews) != 2 ||
		r.Reviews[0].User != "bob" || r.Reviews[0].Reason != "looks right" || r.Reviews[1].User != "carol" {
		t.Fatalf("after the revocation: %+v", r)
	}

	want := []string{
		"request.approve failure alice", "request.approve failure dave", "request.approve success bob",
		"request.approve failure bob", "request.approve success carol", "request.use success alice",
		"request.revoke success admin",
	}
	if got := e.auditOf(id); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the request's audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	created := e.auditOf("prod-db/root")
	if len(created) != 4 || created[2] != "request.create success alice" {
		t.Fatalf("request.create events: %q", created)
	}
	if strings.Contains(e.allOutput(), "req-target-secret-1") || strings.Contains(e.ok("", "audit", "list", "-o", "json"), "req-target-secret-1") {
		t.Fatal("the account's password leaked into output or the audit log")
	}
}

// A grant ends by itself, cutting its sessions; a request nobody approves
// in time expires; a denial carries its reason; the requester cancels.
// With no --approvers, admins approve.
func TestRequestsGrantEndsExpiryDenyCancel(t *testing.T) {
	t.Parallel()
	// The approvers' webhook: the server posts each new request here; the
	// first try is refused, so the one that arrives is a retry.
	hooks := make(chan string, 10)
	var tries atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tries.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		var body struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			body.Text = fmt.Sprintf("bad body: %v", err)
		}
		hooks <- body.Text
	}))
	defer hook.Close()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer("PAMD_REQUEST_WEBHOOK=" + hook.URL + "/services/T0/B0/hook-secret-xyz")
	e.login("admin", adminPassword)
	e.startGateway("gw1")
	e.addEcho("prod-db", "root", "req-target-secret-2")
	e.ok("", "roles", "add", "oncall", "--request", "prod-*/*", "--request-ttl", "3s")
	alice, _ := e.addLifecycleUser("alice", "user", "oncall")

	id := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "deploy", "--duration", "6s"))
	select {
	case text := <-hooks:
		if !strings.Contains(text, "alice asks for prod-db/root for 6s") || !strings.Contains(text, "pamd requests approve "+id) || !strings.Contains(text, "deploy") {
			t.Fatalf("the webhook's text: %q", text)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no webhook delivery after %d tries", tries.Load())
	}
	if out := e.ok("", "requests", "approve", id); !strings.Contains(out, "approved") {
		t.Fatalf("admin approval: %q", out)
	}
	c := alice.connect("prod-db/root")
	echoOnce(t, c.addr())
	conn, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("x"))
	grantEnds := alice.request(id).GrantEnds
	if _, err := waitClosed(conn, 15*time.Second); err != nil {
		t.Fatalf("the connection at the grant's end: %v", err)
	}
	late := time.Since(grantEnds)
	if late > 3*time.Second || late < -time.Second {
		t.Fatalf("the connection was cut %s after the grant's end", late)
	}
	t.Logf("connection cut %s after the grant's end", late.Round(time.Millisecond))
	e.waitEnded(c, "expired")
	e.waitFor("the request ended", 5*time.Second, func() bool { return alice.request(id).State == "ended" })
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "needs an approved access request") {
		t.Fatalf("connect after the grant ended: %q", errOut)
	}

	// Nobody approves in time: it expires.
	unapproved := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "later"))
	e.waitFor("the request expired", 10*time.Second, func() bool { return alice.request(unapproved).State == "expired" })
	if errOut := e.fails("", "requests", "approve", unapproved); !strings.Contains(errOut, "is expired") {
		t.Fatalf("approving an expired request: %q", errOut)
	}

	// A denial needs a reason, which the requester reads.
	denied := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "curious"))
	if _, errOut, err := e.run("", "requests", "deny", denied); exitStatus(err) != 2 || !strings.Contains(errOut, "--reason is required") {
		t.Fatalf("deny without a reason: %d %q", exitStatus(err), errOut)
	}
	e.ok("", "requests", "deny", denied, "--reason", "not during the freeze")
	if r := alice.request(denied); r.State != "denied" || r.CloseReason != "not during the freeze" || r.ClosedBy != "admin" {
		t.Fatalf("denied: %+v", r)
	}
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "needs an approved access request") {
		t.Fatalf("connect after a denial: %q", errOut)
	}

	cancelled := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "oops"))
	alice.ok("", "requests", "cancel", cancelled)
	if r := alice.request(cancelled); r.State != "cancelled" {
		t.Fatalf("cancelled: %+v", r)
	}
	// A role that no longer lets alice request the target ends the
	// sessions she opened under her grant, as for standing grants.
	kept := strings.TrimSpace(alice.ok("", "requests", "create", "prod-db/root", "--reason", "long job"))
	e.ok("", "requests", "approve", kept)
	c = alice.connect("prod-db/root")
	echoOnce(t, c.addr())
	if out := e.ok("", "roles", "set", "oncall", "--remove-request", "prod-*/*", "--add-request", "staging-*/*"); !strings.Contains(out, "1 live sessions it no longer grants ended") {
		t.Fatalf("roles set --remove-request: %q", out)
	}
	e.waitEnded(c, "role oncall changed by admin")
	if errOut := alice.fails("", "connect", "prod-db/root"); !strings.Contains(errOut, "denied") {
		t.Fatalf("connect after the role lost the pattern: %q", errOut)
	}
	var all []accessRequest
	if err := json.Unmarshal([]byte(alice.ok("", "requests", "list", "-o", "json")), &all); err != nil || len(all) != 5 {
		t.Fatalf("alice's history: %v %+v", err, all)
	}

	if strings.Contains(e.allOutput(), "hook-secret-xyz") {
		t.Fatal("the webhook URL's secret is in the server's output")
	}
	for rid, want := range map[string][]string{
		id:         {"request.approve success admin", "request.use success alice", "request.end success system"},
		unapproved: {"request.expire success system", "request.approve failure admin"},
		denied:     {"request.deny success admin"},
		cancelled:  {"request.cancel success alice"},
	} {
		if got := e.auditOf(rid); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit of %s:\n%s\nwant:\n%s", rid, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// consoleLogin logs into the console as user in the browser.
func consoleLogin(t *testing.T, ctx context.Context, url, user, password string) {
	t.Helper()
	run(t, ctx, "log in as "+user,
		chromedp.Navigate(url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", user, chromedp.ByQuery),
		chromedp.SendKeys("#f-password", password, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("nav a[href='#/requests']", chromedp.ByQuery))
}

// The console's Requests page: a user asks for access, an approver sees
// it waiting, a denial without a reason is refused in the page, the
// approval grants it, and pamd connect works under it.
func TestRequestsPageInARealBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	errs := pageErrors(ctx)
	e := newEnv(t)
	e.addEcho("prod-db", "root", "req-target-secret-3")
	e.ok("", "roles", "add", "leads")
	e.ok("", "roles", "add", "oncall", "--request", "prod-*/*", "--approvers", "leads")
	alice, alicePw := e.addLifecycleUser("alice", "user", "oncall")
	_, bobPw := e.addLifecycleUser("bob", "user", "leads")

	consoleLogin(t, ctx, e.url, "alice", alicePw)
	var target string
	run(t, ctx, "request access from the Access page",
		chromedp.Navigate(e.url+"/#/catalog"),
		chromedp.WaitVisible("//td[text()='prod-db/root']/following-sibling::td[contains(., 'on request')]", chromedp.BySearch),
		chromedp.Click("//td[text()='prod-db/root']/following-sibling::td//button[text()='Request']", chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='request access']", chromedp.ByQuery),
		chromedp.Value("form[aria-label='request access'] [name=target]", &target, chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='request access'] [name=reason]", "INC-9 from the console", chromedp.ByQuery),
		chromedp.Click("form[aria-label='request access'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//div[@id='request-message']/div[contains(., 'waits for 1 approval(s) from leads')]", chromedp.BySearch),
		chromedp.WaitVisible("//td[contains(., 'pending 0/1')]", chromedp.BySearch))
	if target != "prod-db/root" {
		t.Fatalf("the Request button filled in the target %q", target)
	}
	var list []accessRequest
	if err := json.Unmarshal([]byte(alice.ok("", "requests", "list", "-o", "json")), &list); err != nil || len(list) != 1 || list[0].Reason != "INC-9 from the console" {
		t.Fatalf("the request made in the console: %v %+v", err, list)
	}
	id := list[0].ID
	if text := checkPage(t, ctx, e.url, "requests"); !strings.Contains(text, "Nothing waits for you.") {
		t.Fatalf("alice's Requests page offers her own request for approval:\n%s", text)
	}

	run(t, ctx, "log out", chromedp.Click("#me button", chromedp.ByQuery), chromedp.WaitVisible("#f-username", chromedp.ByQuery))
	consoleLogin(t, ctx, e.url, "bob", bobPw)
	run(t, ctx, "deny without a reason",
		chromedp.Navigate(e.url+"/#/requests"),
		chromedp.WaitVisible("#deny-"+id, chromedp.ByID),
		chromedp.Click("#deny-"+id, chromedp.ByID),
		chromedp.WaitVisible("//div[@id='request-message']/div[contains(., 'A denial needs a reason.')]", chromedp.BySearch))
	if r := alice.request(id); r.State != "pending" {
		t.Fatalf("a denial without a reason went through: %+v", r)
	}
	run(t, ctx, "approve",
		chromedp.SendKeys("[name='reason-"+id+"']", "go ahead", chromedp.ByQuery),
		chromedp.Click("#approve-"+id, chromedp.ByID),
		chromedp.WaitVisible("//td[contains(., 'approved until')]", chromedp.BySearch),
		chromedp.WaitVisible("//td[contains(., 'bob approved (go ahead)')]", chromedp.BySearch))
	checkPage(t, ctx, e.url, "requests")

	// The role editor shows and changes the request settings.
	run(t, ctx, "log out bob", chromedp.Click("#me button", chromedp.ByQuery), chromedp.WaitVisible("#f-username", chromedp.ByQuery))
	consoleLogin(t, ctx, e.url, "admin", adminPassword)
	if text := checkPage(t, ctx, e.url, "roles"); !strings.Contains(text, "prod-*/* (1 of leads)") {
		t.Fatalf("the roles page does not show oncall's request patterns:\n%s", text)
	}
	var approvers string
	run(t, ctx, "edit oncall's request settings",
		chromedp.Click("//td[text()='oncall']/following-sibling::td//button[text()='Edit']", chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='edit role oncall']", chromedp.ByQuery),
		chromedp.Value("form[aria-label='edit role oncall'] [name=approvers]", &approvers, chromedp.ByQuery),
		chromedp.SetValue("form[aria-label='edit role oncall'] [name=approvals]", "2", chromedp.ByQuery),
		chromedp.Click("form[aria-label='edit role oncall'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//div[contains(@class,'notice')][contains(., 'Role oncall saved')]", chromedp.BySearch))
	if approvers != "leads" {
		t.Fatalf("the role editor's approvers: %q", approvers)
	}
	if list := e.ok("", "roles", "list"); !strings.Contains(list, "prod-*/* (2 of leads)") {
		t.Fatalf("approvals set in the console:\n%s", list)
	}

	echoOnce(t, alice.connect("prod-db/root").addr())
	if r := alice.request(id); r.State != "approved" || r.Uses != 1 || r.Reviews[0].User != "bob" {
		t.Fatalf("after the approval in the console: %+v", r)
	}
	if got := errs(); len(got) > 0 {
		t.Fatalf("the pages' JavaScript reported errors: %q", got)
	}
}

// An SSO user asks as a local user does: the role that lets them ask
// comes from their group at login; the admin approves, pamd connect works
// under the grant and is cut when it is revoked; and once the provider
// drops the group, the next login takes the role, and the ability to ask,
// away.
func TestRequestsBySSOUser(t *testing.T) {
	t.Parallel()
	e, h := ssoEnv(t)
	e.startGateway("gw1")
	e.addEcho("jit-db", "root", "req-target-secret-sso")
	e.ok("", "roles", "add", "jit", "--request", "jit-*/*", "--max-duration", "1h")
	e.ok("", "sso", "set", "--issuer", h.issuer, "--client-id", hydraClientID, "--map", "sre=jit")

	h.set(identity{Subject: "sub-erin-1", Username: "erin", Email: "erin@example.test", Groups: []string{"sre"}})
	erinDir := filepath.Join(e.dir, "erin")
	if _, out, err := cliSSOLogin(t, e, erinDir); err != nil || !strings.Contains(out, "roles: user, jit") {
		t.Fatalf("erin's SSO login: %v\n%s", err, out)
	}
	erin := &userCLI{e: e, name: "erin", env: []string{"PAMD_CONFIG_DIR=" + erinDir}}
	if errOut := erin.fails("", "connect", "jit-db/root"); !strings.Contains(errOut, "request") {
		t.Fatalf("connect before a request: %q", errOut)
	}
	id := strings.TrimSpace(erin.ok("", "requests", "create", "jit-db/root", "--reason", "INC-77 from SSO", "--duration", "20m"))
	if errOut := erin.fails("", "requests", "approve", id); !strings.Contains(errOut, "your own request") {
		t.Fatalf("self-approval by an SSO user: %q", errOut)
	}
	if out := e.ok("", "requests", "approve", id, "--reason", "ok"); !strings.Contains(out, "approved: erin may connect to jit-db/root") {
		t.Fatalf("the admin's approval: %q", out)
	}
	c := erin.connect("jit-db/root")
	echoOnce(t, c.addr())
	var sd struct {
		RequestID     string `json:"request_id"`
		RequestReason string `json:"request_reason"`
	}
	e.json(&sd, "sessions", "show", c.SessionID, "-o", "json")
	if sd.RequestID != id || sd.RequestReason != "INC-77 from SSO" {
		t.Fatalf("erin's session does not carry the request: %+v", sd)
	}
	e.ok("", "requests", "revoke", id, "--reason", "done")
	e.waitEnded(c, "access request "+id+" revoked by admin")

	// Out of the group at the next login: no role to ask under.
	h.set(identity{Subject: "sub-erin-1", Username: "erin", Email: "erin@example.test", Groups: []string{"staff"}})
	if _, out, err := cliSSOLogin(t, e, erinDir); err != nil || strings.Contains(out, "jit") {
		t.Fatalf("erin's second SSO login: %v\n%s", err, out)
	}
	if errOut := erin.fails("", "requests", "create", "jit-db/root", "--reason", "again"); !strings.Contains(errOut, "none of your roles") {
		t.Fatalf("a request after the group was dropped: %q", errOut)
	}
	if got := e.auditOf(id); strings.Join(got, ",") == "" || !strings.Contains(strings.Join(got, ","), "request.approve success admin") {
		t.Fatalf("the request's audit trail: %q", got)
	}
}
