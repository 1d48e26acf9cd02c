package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWatchLiveSessionInARealBrowser: an admin watches another user's
// pamd ssh session live from its session page: what the user types and
// the shell prints appears in the page within a few seconds, the user's
// terminal says who watches, the page cannot type, the watch is audited,
// and the page says when the session ends.
func TestWatchLiveSessionInARealBrowser(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	e.ok("", "roles", "add", "boxers", "--allow", "box/*")
	bob, _ := e.addLifecycleUser("bob", "boxers")
	send, screen := tmuxSession(t, e, 100, 30, strings.Join(bob.env, " ")+" "+pamdBin+" ssh box/pw --reason watch-test")
	e.waitFor("bob's remote prompt", 15*time.Second, func() bool { return strings.Contains(screen(), sshUser+"@") })
	var live []sessionDetail
	e.json(&live, "sessions", "list", "-o", "json")
	if len(live) != 1 || !live[0].Active {
		t.Fatalf("sessions %+v, want bob's one live session", live)
	}
	id := live[0].ID
	n := rand.IntN(1 << 20)
	send(fmt.Sprintf("echo before-watch-$((%d+1))", n))

	ctx := browser(t)
	run(t, ctx, "log in",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", adminPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("#nav", chromedp.ByQuery),
	)
	run(t, ctx, "the session page offers to watch",
		chromedp.Navigate(e.url+"/#/session/"+id),
		chromedp.WaitVisible("//a[contains(., 'Watch live')]", chromedp.BySearch),
	)
	run(t, ctx, "watch", chromedp.Navigate(e.url+"/term.html#watch/"+id), chromedp.WaitVisible("#terminal .xterm-rows", chromedp.ByQuery))
	waitStatus(t, ctx, "watching live (read-only)", 10*time.Second)
	// What the terminal showed before the watch began, then what follows.
	waitTerm(t, ctx, fmt.Sprintf("before-watch-%d", n+1), 10*time.Second)
	e.waitFor("bob's terminal to say that admin watches", 10*time.Second, func() bool {
		return strings.Contains(screen(), "pamd: admin is watching this session live (read-only)")
	})
	send(fmt.Sprintf("echo while-watched-$((%d+2))", n))
	typed := time.Now()
	waitTerm(t, ctx, fmt.Sprintf("while-watched-%d", n+2), 10*time.Second)
	behind := time.Since(typed)
	t.Logf("the watcher saw the output %s after it was typed", behind.Round(time.Millisecond))
	if behind > 3*time.Second {
		t.Errorf("the watcher is %s behind, want a few seconds at most", behind)
	}
	// The page is read-only: typing there reaches nobody.
	typeInTerm(t, ctx, "echo from-the-watcher\r")
	time.Sleep(time.Second)
	if strings.Contains(screen(), "from-the-watcher") {
		t.Fatal("what the watcher typed reached the watched terminal")
	}
	shot(t, ctx, "watch")

	// Watching is audited, and says the user was told.
	audit := e.ok("", "audit", "list", "--action", "session.watch")
	if !strings.Contains(audit, id) || !strings.Contains(audit, "the user was told") {
		t.Fatalf("no session.watch event for %s that says bob was told:\n%s", id, audit)
	}
	send("exit")
	waitStatus(t, ctx, "session ended: ended by bob", 15*time.Second)
}
