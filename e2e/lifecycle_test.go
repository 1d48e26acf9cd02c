package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// userCLI is pamd run as a user logged in from a config dir of their own,
// so the env's admin login stays where it is.
type userCLI struct {
	e    *env
	name string
	env  []string // PAMD_CONFIG_DIR of their own, after the env's
}

// addLifecycleUser adds a user with roles, logs them in with the one-time
// password and sets their own, which it returns with their CLI.
func (e *env) addLifecycleUser(name string, roles ...string) (*userCLI, string) {
	e.t.Helper()
	args := []string{"users", "add", name, "-o", "json"}
	for _, r := range roles {
		args = append(args, "--role", r)
	}
	var added struct{ Password string }
	e.json(&added, args...)
	u := &userCLI{e: e, name: name, env: []string{"PAMD_CONFIG_DIR=" + filepath.Join(e.dir, "cli-"+name)}}
	u.login(added.Password)
	own := name + "-own-password-1"
	u.ok(added.Password+"\n"+own+"\n", "passwd", "--stdin")
	return u, own
}

func (u *userCLI) run(stdin string, args ...string) (string, string, error) {
	return u.e.runEnv(u.env, stdin, args...)
}

func (u *userCLI) login(password string) {
	u.e.t.Helper()
	u.ok(password+"\n", "login", "--server", u.e.url, "--user", u.name, "--password-stdin", "--ca-fingerprint", u.e.fp)
}

func (u *userCLI) ok(stdin string, args ...string) string {
	u.e.t.Helper()
	out, errOut, err := u.run(stdin, args...)
	if err != nil {
		u.e.t.Fatalf("pamd %s as %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), u.name, err, out, errOut)
	}
	return out
}

func (u *userCLI) fails(stdin string, args ...string) string {
	u.e.t.Helper()
	out, errOut, err := u.run(stdin, args...)
	if err == nil {
		u.e.t.Fatalf("pamd %s as %s succeeded, want failure\nstdout: %s", strings.Join(args, " "), u.name, out)
	}
	return errOut
}

// connect starts pamd connect as the user and waits for its JSON line.
func (u *userCLI) connect(target string, extra ...string) *connection {
	u.e.t.Helper()
	p := u.e.start(u.env, append([]string{"connect", target, "-o", "json"}, extra...)...)
	var c connection
	u.e.waitFor("pamd connect ready as "+u.name, 20*time.Second, func() bool {
		select {
		case <-p.done:
			u.e.t.Fatalf("pamd connect as %s exited: %v\n%s", u.name, p.err, p.stderr.String())
		default:
		}
		line, _, ok := strings.Cut(p.stdout.String(), "\n")
		return ok && json.Unmarshal([]byte(line), &c) == nil
	})
	c.proc = p
	return &c
}

// waitEnded waits for a pamd connect to exit because its session ended
// and returns what it printed.
func (e *env) waitEnded(c *connection, why string) string {
	e.t.Helper()
	select {
	case <-c.proc.done:
	case <-time.After(10 * time.Second):
		e.t.Fatalf("pamd connect still running 10 s after its session should have ended (%s)", why)
	}
	errOut := c.proc.stderr.String()
	if !strings.Contains(errOut, why) {
		e.t.Fatalf("pamd connect ended without saying %q:\n%s", why, errOut)
	}
	return errOut
}

// exitStatus is a pamd run's exit status.
func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A role removed takes effect at once: the user's token stops working and
// their session ends. A role added works from their next login.
func TestLifecycleUserRolesTakeEffect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "life-target-1")
	e.ok("", "roles", "add", "echoers", "--allow", "echo/*")
	erin, pw := e.addLifecycleUser("erin", "user", "echoers")
	c := erin.connect("echo/raw")
	echoOnce(t, c.addr())

	if _, errOut, err := e.run("", "users", "set", "erin"); exitStatus(err) != 2 || !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("users set without a change: exit %d, %q", exitStatus(err), errOut)
	}
	if errOut := e.fails("", "users", "set", "erin", "--add-role", "no-such-role"); !strings.Contains(errOut, `no role named "no-such-role"`) {
		t.Fatalf("unknown role: %q", errOut)
	}
	if errOut := e.fails("", "users", "set", "admin", "--remove-role", "admin", "--add-role", "user"); !strings.Contains(errOut, "the last admin cannot lose the admin role") {
		t.Fatalf("the last admin losing the role: %q", errOut)
	}

	out := e.ok("", "users", "set", "erin", "--remove-role", "echoers")
	if !strings.Contains(out, "erin: roles user") || !strings.Contains(out, "1 live sessions ended") {
		t.Fatalf("users set --remove-role:\n%s", out)
	}
	e.waitEnded(c, "role echoers removed by admin")
	if errOut := erin.fails("", "ls"); !strings.Contains(errOut, "pamd login") {
		t.Fatalf("erin's token after the removal: %q", errOut)
	}

	e.ok("", "users", "set", "erin", "--add-role", "echoers")
	erin.login(pw)
	echoOnce(t, erin.connect("echo/raw").addr())

	audit := e.ok("", "audit", "list", "--action", "user.update", "-o", "json")
	if !strings.Contains(audit, "roles -echoers") || !strings.Contains(audit, "roles +echoers") {
		t.Fatalf("role changes not audited:\n%s", audit)
	}
}

// A password reset gives a one-time password, shown once to the admin;
// the old password and the user's tokens stop working.
func TestLifecycleResetPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	erin, old := e.addLifecycleUser("erin", "user")
	if errOut := e.fails("", "users", "reset-password", "admin"); !strings.Contains(errOut, "pamd passwd") {
		t.Fatalf("resetting one's own password: %q", errOut)
	}
	var reset struct {
		Password      string
		TokensRevoked int `json:"tokens_revoked"`
	}
	e.json(&reset, "users", "reset-password", "erin", "-o", "json")
	if reset.Password == "" || reset.TokensRevoked < 1 {
		t.Fatalf("reset-password: %+v", reset)
	}
	if errOut := erin.fails("", "whoami"); !strings.Contains(errOut, "pamd login") {
		t.Fatalf("erin's token after the reset: %q", errOut)
	}
	if errOut := erin.fails(old+"\n", "login", "--server", e.url, "--user", "erin", "--password-stdin", "--ca-fingerprint", e.fp); !strings.Contains(errOut, "invalid username or password") {
		t.Fatalf("the old password: %q", errOut)
	}
	erin.login(reset.Password)
	if errOut := erin.fails("", "ls"); !strings.Contains(errOut, "pamd passwd") {
		t.Fatalf("the new one-time password is not one-time: %q", errOut)
	}
	erin.ok(reset.Password+"\nerin-own-password-2\n", "passwd", "--stdin")
	erin.ok("", "ls")

	audit := e.ok("", "audit", "list", "--action", "user.reset_password", "-o", "json")
	if !strings.Contains(audit, `"erin"`) || !strings.Contains(audit, "tokens revoked") {
		t.Fatalf("reset not audited:\n%s", audit)
	}
	if strings.Contains(e.ok("", "audit", "list", "-o", "json"), reset.Password) || strings.Contains(e.server.stderr.String(), reset.Password) {
		t.Fatal("the one-time password is in the audit log or the server's log")
	}
}

// A deleted user cannot log in and their session ends; the audit log
// still names them.
func TestLifecycleDeleteUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "life-target-2")
	e.ok("", "roles", "add", "echoers", "--allow", "echo/*")
	erin, pw := e.addLifecycleUser("erin", "user", "echoers")
	c := erin.connect("echo/raw")
	echoOnce(t, c.addr())

	if errOut := e.fails("", "users", "delete", "admin"); !strings.Contains(errOut, "you cannot delete yourself") {
		t.Fatalf("deleting oneself: %q", errOut)
	}
	out := e.ok("", "users", "delete", "erin")
	if !strings.Contains(out, "user erin deleted") || !strings.Contains(out, "1 live sessions ended") {
		t.Fatalf("users delete:\n%s", out)
	}
	e.waitEnded(c, "user deleted by admin")
	if errOut := erin.fails(pw+"\n", "login", "--server", e.url, "--user", "erin", "--password-stdin", "--ca-fingerprint", e.fp); !strings.Contains(errOut, "invalid username or password") {
		t.Fatalf("a deleted user's login: %q", errOut)
	}
	if strings.Contains(e.ok("", "users", "list"), "erin") {
		t.Fatal("a deleted user is listed")
	}
	var byErin []struct{ Action string }
	e.json(&byErin, "audit", "list", "--user", "erin", "-o", "json")
	if len(byErin) == 0 {
		t.Fatal("the audit log lost the deleted user's events")
	}
	if audit := e.ok("", "audit", "list", "--action", "user.delete"); !strings.Contains(audit, "erin") {
		t.Fatalf("the deletion not audited:\n%s", audit)
	}
	var sessions []sessionDetail
	e.json(&sessions, "sessions", "list", "-o", "json")
	if len(sessions) != 1 || sessions[0].User != "erin" {
		t.Fatalf("the deleted user's session history: %+v", sessions)
	}
}

// A role narrowed ends the sessions it no longer grants, and the next
// session to what it dropped is denied.
func TestLifecycleRoleSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "life-target-3")
	e.addEcho("other", "raw", "life-target-4")
	e.ok("", "roles", "add", "ops", "--allow", "echo/*", "--allow", "other/*")
	erin, _ := e.addLifecycleUser("erin", "user", "ops")
	onOther := erin.connect("other/raw")
	onEcho := erin.connect("echo/raw")
	echoOnce(t, onOther.addr())

	if _, errOut, err := e.run("", "roles", "set", "ops", "--allow", "echo/*", "--remove-allow", "other/*"); exitStatus(err) != 2 || !strings.Contains(errOut, "--allow replaces") {
		t.Fatalf("--allow with --remove-allow: exit %d, %q", exitStatus(err), errOut)
	}
	if errOut := e.fails("", "roles", "set", "ops", "--add-allow", "no-slash"); !strings.Contains(errOut, "RESOURCE_GLOB/ACCOUNT_GLOB") {
		t.Fatalf("a bad pattern: %q", errOut)
	}
	if errOut := e.fails("", "roles", "set", "admin", "--allow", "echo/*"); !strings.Contains(errOut, "the built-in admin role's grants cannot be reduced") {
		t.Fatalf("narrowing the admin role: %q", errOut)
	}

	out := e.ok("", "roles", "set", "ops", "--remove-allow", "other/*")
	if !strings.Contains(out, "allow echo/*") || !strings.Contains(out, "1 live sessions") {
		t.Fatalf("roles set --remove-allow:\n%s", out)
	}
	e.waitEnded(onOther, "role ops changed by admin")
	echoOnce(t, onEcho.addr()) // still granted: goes on
	if errOut := erin.fails("", "connect", "other/raw"); !strings.Contains(errOut, "denied") {
		t.Fatalf("a session the role no longer grants: %q", errOut)
	}

	e.ok("", "roles", "set", "ops", "--require-reason", "--max-duration", "30m", "--description", "operators")
	if errOut := erin.fails("", "connect", "echo/raw"); !strings.Contains(errOut, "needs a reason") {
		t.Fatalf("the role's new reason rule: %q", errOut)
	}
	c := erin.connect("echo/raw", "--reason", "ticket 9", "--duration", "2h")
	if d := time.Until(c.ExpiresAt); d > 30*time.Minute {
		t.Fatalf("a session lasts %s under the role's new 30m", d)
	}
	if list := e.ok("", "roles", "list"); !regexp.MustCompile(`ops\s+echo/\*\s+30m0s\s+yes`).MatchString(list) {
		t.Fatalf("roles list:\n%s", list)
	}

	// Removing a role ends only the sessions no other role of theirs grants.
	e.ok("", "roles", "add", "echoers", "--allow", "echo/*")
	e.ok("", "users", "set", "erin", "--add-role", "echoers")
	e.ok("", "roles", "rm", "ops")
	echoOnce(t, c.addr()) // echoers grants it still
	e.ok("", "roles", "rm", "echoers")
	e.waitEnded(c, "role echoers removed by admin")
}

// listsGateway reports whether pamd gateways list shows name.
func (e *env) listsGateway(name string) bool {
	e.t.Helper()
	var gws []struct{ Name string }
	e.json(&gws, "gateways", "list", "-o", "json")
	for _, g := range gws {
		if g.Name == name {
			return true
		}
	}
	return false
}

// A gateway that resources name is removed only with --move-to, and a
// connected one only with --force; its tunnel is cut and it is refused
// from then on, while its resources go on through the other gateway.
func TestLifecycleGatewayRemove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gw1 := e.gateway
	e.startGateway("gw2")
	gw2 := e.gateway
	e.addEcho("echo", "raw", "life-target-5")
	c := e.connect("echo/raw")
	echoOnce(t, c.addr())

	if errOut := e.fails("", "gateways", "remove", "gw1"); !strings.Contains(errOut, "gateway gw1 still serves echo") || !strings.Contains(errOut, "--move-to") {
		t.Fatalf("removing a gateway resources name: %q", errOut)
	}
	if errOut := e.fails("", "gateways", "remove", "gw1", "--move-to", "gw2"); !strings.Contains(errOut, "is connected: pass --force") {
		t.Fatalf("removing a connected gateway: %q", errOut)
	}
	if errOut := e.fails("", "gateways", "remove", "gw1", "--move-to", "gw9", "--force"); !strings.Contains(errOut, `no gateway named "gw9"`) {
		t.Fatalf("moving to an unknown gateway: %q", errOut)
	}
	out := e.ok("", "gateways", "remove", "gw1", "--move-to", "gw2", "--force")
	if !strings.Contains(out, "gateway gw1 removed; its tunnel was cut; moved to gw2: echo") {
		t.Fatalf("gateways remove:\n%s", out)
	}
	// It keeps trying, and is refused each time, saying why.
	e.waitFor("the removed gateway refused", 10*time.Second, func() bool {
		return strings.Contains(gw1.stderr.String(), "no gateway of that name is enrolled")
	})
	if e.listsGateway("gw1") {
		t.Fatal("the removed gateway is still listed")
	}
	// The session goes on: its next connection is through gw2.
	echoOnce(t, c.addr())
	if audit := e.ok("", "audit", "list", "--action", "gateway.remove"); !strings.Contains(audit, "moved echo to gw2") {
		t.Fatalf("the removal not audited:\n%s", audit)
	}
	if audit := e.ok("", "audit", "list", "--action", "resource.update"); !strings.Contains(audit, "off gateway gw1") {
		t.Fatalf("the move not audited:\n%s", audit)
	}

	// An offline gateway is listed with how long it has been away.
	gw2.cmd.Process.Signal(syscall.SIGTERM)
	<-gw2.done
	away := regexp.MustCompile(`gw2\s+offline \d+s`)
	e.waitFor("gw2 listed as offline for some seconds", 10*time.Second, func() bool { return away.MatchString(e.ok("", "gateways", "list")) })
}

// The console's users and roles pages make the same changes: a password
// reset shows the one-time password once, roles are ticked on and off, a
// role is edited, a user deleted.
func TestLifecycleConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("", "roles", "add", "ops", "--allow", "web/*")
	e.addLifecycleUser("erin", "user")
	ctx := browser(t)
	row := func(name, button string) string {
		return "//td[text()='" + name + "']/following-sibling::td//button[text()='" + button + "']"
	}
	run(t, ctx, "log in",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", adminPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("nav a[href='#/users']", chromedp.ByQuery),
	)
	run(t, ctx, "reset erin's password",
		chromedp.Navigate(e.url+"/#/users"),
		chromedp.WaitVisible(row("erin", "Reset password"), chromedp.BySearch),
		chromedp.Click(row("erin", "Reset password"), chromedp.BySearch),
		chromedp.WaitVisible("#user-detail .notice code", chromedp.ByQuery),
	)
	password := textOf(t, ctx, "#user-detail .notice code")
	erin := &userCLI{e: e, name: "erin", env: []string{"PAMD_CONFIG_DIR=" + filepath.Join(e.dir, "cli-erin")}}
	erin.login(password)
	if errOut := erin.fails("", "ls"); !strings.Contains(errOut, "pamd passwd") {
		t.Fatalf("the console's one-time password: %q", errOut)
	}

	run(t, ctx, "give erin the ops role",
		chromedp.Click(row("erin", "Roles"), chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='roles of erin']", chromedp.ByQuery),
		chromedp.Click("form[aria-label='roles of erin'] [name=role-ops]", chromedp.ByQuery),
		chromedp.Click("form[aria-label='roles of erin'] button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='roles of erin'] .notice", chromedp.ByQuery),
	)
	if list := e.ok("", "users", "list"); !regexp.MustCompile(`erin\s+user,ops`).MatchString(list) {
		t.Fatalf("roles set in the console:\n%s", list)
	}

	run(t, ctx, "edit the ops role",
		chromedp.Navigate(e.url+"/#/roles"),
		chromedp.WaitVisible(row("ops", "Edit"), chromedp.BySearch),
		chromedp.Click(row("ops", "Edit"), chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='edit role ops']", chromedp.ByQuery),
		chromedp.SetValue("form[aria-label='edit role ops'] [name=allow]", "web/ro db/*", chromedp.ByQuery),
		chromedp.Click("form[aria-label='edit role ops'] button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("form[aria-label='edit role ops'] .notice", chromedp.ByQuery),
	)
	if list := e.ok("", "roles", "list"); !regexp.MustCompile(`ops\s+web/ro db/\*`).MatchString(list) {
		t.Fatalf("role edited in the console:\n%s", list)
	}

	run(t, ctx, "delete erin",
		chromedp.Navigate(e.url+"/#/users"),
		chromedp.WaitVisible(row("erin", "Delete"), chromedp.BySearch),
		chromedp.Click(row("erin", "Delete"), chromedp.BySearch),
		chromedp.WaitNotPresent("//td[text()='erin']", chromedp.BySearch),
	)
	if strings.Contains(e.ok("", "users", "list"), "erin") {
		t.Fatal("erin is still a user after the console deleted her")
	}
}
