package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestEscapedOutputDoesNotStopRecording: records travel as JSON, where '<'
// takes 6 bytes. A shell that prints 3 MB of it is recorded whole, the
// sessions after it are recorded too, and the gateway's upload backlog
// drains to 0 (pamd gateways list).
func TestEscapedOutputDoesNotStopRecording(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	const size = 3 << 20
	send, screen := tmuxSession(t, e, 100, 30, pamdBin+" ssh box/pw --reason escaped-output")
	e.waitFor("the remote prompt", 10*time.Second, func() bool { return strings.Contains(screen(), sshUser+"@") })
	send("head -c 3145728 /dev/zero | tr '\\0' '<'; echo; echo printed-$((6*7))")
	e.waitFor("the output printed", 90*time.Second, func() bool { return strings.Contains(screen(), "printed-42") })
	send("exit")
	var sessions []sessionDetail
	e.waitFor("the first session to end", 15*time.Second, func() bool {
		e.json(&sessions, "sessions", "list", "-o", "json")
		return len(sessions) == 1 && !sessions[0].Active
	})
	first := sessions[0].ID

	// A later session is recorded too: nothing is stuck at the head of the spool.
	if out := e.ok("", "ssh", "box/key", "--", "echo", "later-marker"); out != "later-marker\n" {
		t.Fatalf("later session: %q", out)
	}
	e.json(&sessions, "sessions", "list", "-o", "json")
	var second string
	for _, sd := range sessions {
		if sd.ID != first {
			second = sd.ID
		}
	}
	e.waitFor("the later session's records on the server", 30*time.Second, func() bool {
		logs := e.ok("", "sessions", "logs", second)
		return strings.Contains(logs, "exec echo later-marker") && strings.Contains(logs, "exit status 0")
	})
	var recs []struct {
		Type string
		Data string
	}
	e.waitFor("all 3 MB of '<' on the server", 30*time.Second, func() bool {
		e.json(&recs, "sessions", "logs", first, "-o", "json")
		n, exited := 0, false
		for _, r := range recs {
			if r.Type == "o" {
				n += strings.Count(r.Data, "<")
			}
			exited = exited || r.Type == "exit"
		}
		return n >= size && exited
	})
	var gws []struct {
		Name    string
		Backlog *struct{ Records, Bytes int64 }
	}
	e.waitFor("the gateway's backlog to drain to 0", 15*time.Second, func() bool {
		e.json(&gws, "gateways", "list", "-o", "json")
		return len(gws) == 1 && gws[0].Backlog != nil && gws[0].Backlog.Records == 0 && gws[0].Backlog.Bytes == 0
	})
	if list := e.ok("", "gateways", "list"); !strings.Contains(list, "BACKLOG") {
		t.Fatalf("gateways list has no BACKLOG column:\n%s", list)
	}
	if logs := e.gateway.stderr.String(); strings.Contains(logs, "record upload failed") {
		t.Fatalf("an upload failed:\n%s", lastLines(logs, 20))
	}
}
