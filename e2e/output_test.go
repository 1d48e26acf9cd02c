package e2e

import (
	"strings"
	"testing"
)

// TestAuditListEscapesControlCharacters: text from users (a login name, a
// session's reason) reaches the audit log as given; pamd audit list and
// sessions show must print it escaped, one row per event, with nothing that
// acts on the reader's terminal, while -o json keeps it exact.
func TestAuditListEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const forge = "\x1b[2K\rforged row\n"
	// A failed login under the name, from a config dir of its own.
	if out, errOut, err := e.runEnv([]string{"PAMD_CONFIG_DIR=" + t.TempDir()}, "wrong-password\n",
		"login", "--server", e.url, "--user", "mallory"+forge, "--password-stdin", "--ca-fingerprint", e.fp); err == nil {
		t.Fatalf("login succeeded: %s", out)
	} else if strings.ContainsAny(errOut, "\x1b\r") {
		t.Fatalf("raw control characters in the login error: %q", errOut)
	}
	// A session whose reason holds it (inside: the server trims the ends).
	e.addEcho("web", "any", "svc-password")
	c := e.connect("web/any", "--reason", "checking"+forge+"too")

	var events []struct{ Action, Actor, Detail string }
	e.json(&events, "audit", "list", "-o", "json")
	exact := false
	for _, ev := range events {
		exact = exact || ev.Action == "access.grant" && strings.Contains(ev.Detail, "reason: checking"+forge+"too")
	}
	if !exact {
		t.Fatalf("-o json does not keep the reason exactly: %q", events)
	}
	table := e.ok("", "audit", "list")
	if strings.ContainsAny(table, "\x1b\r\t") {
		t.Fatalf("raw control characters in audit list:\n%q", table)
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != len(events)+1 {
		t.Fatalf("%d lines for %d events and a header:\n%s", len(lines), len(events), table)
	}
	for _, l := range lines {
		if strings.Contains(l, "access.grant") && !strings.Contains(l, `reason: checking\x1b[2K\rforged row\ntoo`) ||
			strings.Contains(l, "forged row") && !strings.Contains(l, "access.grant") && !strings.Contains(l, "auth.login") {
			t.Fatalf("the reason is not shown escaped in its row:\n%s", table)
		}
	}
	show := e.ok("", "sessions", "show", c.SessionID)
	if strings.ContainsAny(show, "\x1b\r") || !strings.Contains(show, `reason:    checking\x1b[2K\rforged row\ntoo`) {
		t.Fatalf("sessions show:\n%q", show)
	}
}
