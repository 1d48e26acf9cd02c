package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// termText is what the page's terminal shows (its visible rows, with the
// renderer's non-breaking spaces as spaces).
const termText = `(document.querySelector("#terminal .xterm-rows") || {textContent: ""}).textContent.replace(/\u00a0/g, " ")`

// waitTerm waits until the page's terminal shows want.
func waitTerm(t *testing.T, ctx context.Context, want string, within time.Duration) {
	t.Helper()
	run(t, ctx, "the terminal shows "+want, chromedp.Poll(termText+`.includes(`+jsString(want)+`)`, nil, chromedp.WithPollingTimeout(within)))
}

// waitStatus waits until the terminal page's status line says want, and
// returns when it did.
func waitStatus(t *testing.T, ctx context.Context, want string, within time.Duration) time.Time {
	t.Helper()
	run(t, ctx, "the status says "+want, chromedp.Poll(`document.getElementById("status").textContent === `+jsString(want), nil,
		chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(10*time.Millisecond)))
	return time.Now()
}

func jsString(s string) string { return fmt.Sprintf("%q", s) } // ASCII: a Go quoted string is a JS one

// typeInTerm types keys into the terminal: text as the browser inserts it
// (an input event), each \r as the Enter key. Not chromedp.SendKeys: its
// key-down-then-char events are not a keyboard's, and xterm.js takes
// each character twice from them.
func typeInTerm(t *testing.T, ctx context.Context, keys string) {
	t.Helper()
	acts := []chromedp.Action{chromedp.Focus("#terminal textarea", chromedp.ByQuery)}
	for i, part := range strings.Split(keys, "\r") {
		if i > 0 {
			acts = append(acts, pressEnter)
		}
		if part != "" {
			acts = append(acts, input.InsertText(part))
		}
	}
	run(t, ctx, "type "+keys, acts...)
}

var pressEnter = chromedp.ActionFunc(func(ctx context.Context) error {
	key := func(typ input.KeyType) *input.DispatchKeyEventParams {
		return input.DispatchKeyEvent(typ).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).WithNativeVirtualKeyCode(13)
	}
	if err := key(input.KeyRawDown).Do(ctx); err != nil {
		return err
	}
	return key(input.KeyUp).Do(ctx)
})

func termSize(t *testing.T, ctx context.Context) (cols, rows string) {
	t.Helper()
	run(t, ctx, "read the terminal's size",
		chromedp.AttributeValue("#terminal", "data-cols", &cols, nil, chromedp.ByQuery),
		chromedp.AttributeValue("#terminal", "data-rows", &rows, nil, chromedp.ByQuery))
	return cols, rows
}

// TestWebTerminalInARealBrowser: "Open in browser" on an SSH account opens
// a session and a shell in the page, through the gateway as pamd ssh's:
// typed, pasted, resized, recorded, and ended within a second by a
// terminate or the expiry.
func TestWebTerminalInARealBrowser(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts 1 s windows.
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	ctx := browser(t)
	run(t, ctx, "log in",
		chromedp.Navigate(e.url+"/#/login"),
		chromedp.WaitVisible("#f-username", chromedp.ByQuery),
		chromedp.SendKeys("#f-username", "admin", chromedp.ByQuery),
		chromedp.SendKeys("#f-password", adminPassword, chromedp.ByQuery),
		chromedp.Click("form[aria-label='log in'] button", chromedp.ByQuery),
		chromedp.WaitVisible("//td[text()='box/pw']", chromedp.BySearch),
	)
	run(t, ctx, "open box-pw in the browser",
		chromedp.Click("//td[text()='box/pw']/following-sibling::td/button[text()='Open in browser']", chromedp.BySearch),
		chromedp.WaitVisible("form[aria-label='open box/pw in the browser']", chromedp.ByQuery),
		chromedp.SendKeys("form[aria-label='open box/pw in the browser'] [name=reason]", "web-terminal-test", chromedp.ByQuery),
		chromedp.Click("form[aria-label='open box/pw in the browser'] button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#terminal .xterm-rows", chromedp.ByQuery),
	)
	waitStatus(t, ctx, "connected", 10*time.Second)
	waitTerm(t, ctx, sshUser+"@", 10*time.Second)
	shot(t, ctx, "webterm")
	var id string
	run(t, ctx, "read the session", chromedp.Evaluate(`decodeURIComponent(location.hash.slice(1))`, &id))

	n := rand.IntN(1 << 20)
	typeInTerm(t, ctx, fmt.Sprintf("echo pamd-web-$((%d+1))\r", n))
	marker := fmt.Sprintf("pamd-web-%d", n+1)
	waitTerm(t, ctx, marker, 10*time.Second)

	// Paste, as the browser's paste event gives it.
	run(t, ctx, "paste", chromedp.Evaluate(`(() => {
		const dt = new DataTransfer();
		dt.setData("text/plain", "echo pasted-$((2*21))");
		document.querySelector("#terminal textarea").dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true}));
	})()`, nil))
	typeInTerm(t, ctx, "\r")
	waitTerm(t, ctx, "pasted-42", 10*time.Second)

	// The window shrinks: the terminal refits, and the shell sees the new size.
	cols0, rows0 := termSize(t, ctx)
	run(t, ctx, "shrink the window", chromedp.EmulateViewport(900, 600),
		chromedp.Poll(`document.getElementById("terminal").dataset.cols !== `+jsString(cols0), nil, chromedp.WithPollingTimeout(5*time.Second)))
	cols, rows := termSize(t, ctx)
	if rows == rows0 {
		t.Fatalf("the terminal kept %s rows at 600 px high", rows)
	}
	typeInTerm(t, ctx, "clear; stty size\r")
	waitTerm(t, ctx, rows+" "+cols, 10*time.Second)
	shot(t, ctx, "webterm-resized")

	// The connection is the session's, from the browser's address.
	var sd sessionDetail
	e.json(&sd, "sessions", "show", id, "-o", "json")
	if len(sd.Connections) != 1 || !strings.HasPrefix(sd.Connections[0].ClientAddr, "127.0.0.1:") || sd.Reason != "web-terminal-test" {
		t.Fatalf("session %s: reason %q, connections %+v", id, sd.Reason, sd.Connections)
	}

	start := time.Now()
	e.ok("", "sessions", "terminate", id)
	if told := waitStatus(t, ctx, "session ended: terminated by admin", 5*time.Second); told.Sub(start) > time.Second {
		t.Fatalf("the page said the session ended %s after the terminate, want within 1 s", told.Sub(start))
	} else {
		t.Logf("the page said the session ended %s after the terminate", told.Sub(start).Round(time.Millisecond))
	}
	shot(t, ctx, "webterm-ended")
	var logs string
	defer func() {
		if t.Failed() {
			t.Logf("pamd sessions logs %s:\n%s", id, lastLines(logs, 40))
		}
	}()
	// What was typed and what the shell printed, as the gateway recorded them.
	e.waitFor("the recording", 10*time.Second, func() bool {
		logs, _, _ = e.run("", "sessions", "logs", id, "-o", "json")
		return strings.Contains(logs, fmt.Sprintf("echo pamd-web-$((%d+1))", n)) && strings.Contains(logs, marker)
	})
	if text := e.ok("", "sessions", "logs", id); !strings.Contains(text, "terminal xterm-256color") || !strings.Contains(text, "resize "+cols+"x"+rows) {
		t.Fatalf("pamd sessions logs %s lacks the terminal or its resize:\n%s", id, text)
	}

	// A session that expires: the page says so within a second.
	var short struct {
		ID        string `json:"id"`
		ExpiresAt string `json:"expires_at"`
	}
	run(t, ctx, "open a 5 s session", chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(e.url+"/#/catalog"), chromedp.WaitVisible("//td[text()='box/key']", chromedp.BySearch),
		chromedp.Evaluate(`fetch("/api/v1/sessions", {method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/json", "X-CSRF-Token": state.csrf},
			body: JSON.stringify({resource: "box", account: "key", duration: "5s"})}).then((r) => r.json()).then((g) => g.session)`,
			&short, awaitPromise),
	)
	expires, err := time.Parse(time.RFC3339Nano, short.ExpiresAt)
	if err != nil {
		t.Fatalf("the 5 s session: %+v", short)
	}
	run(t, ctx, "open its terminal", chromedp.Navigate(e.url+"/term.html#"+short.ID), chromedp.WaitVisible("#terminal .xterm-rows", chromedp.ByQuery))
	waitTerm(t, ctx, sshUser+"@", 10*time.Second)
	if told := waitStatus(t, ctx, "session expired", 10*time.Second); told.Sub(expires) > time.Second {
		t.Fatalf("the page said the session expired %s after its expiry, want within 1 s", told.Sub(expires))
	} else {
		t.Logf("the page said the session expired %s after its expiry", told.Sub(expires).Round(time.Millisecond))
	}
}
