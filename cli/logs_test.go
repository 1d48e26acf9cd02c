package cli

import (
	"strings"
	"testing"

	"github.com/pamd/pamd/protocol/tunnel"
)

// TestLogsShowTruncation: a cut statement is marked truncated with the
// whole's length and hash, and its one-line summary keeps its end.
func TestLogsShowTruncation(t *testing.T) {
	ok := 1
	r := tunnel.Record{Type: "sql", Status: &ok, Command: "SELECT 1 /*" + strings.Repeat("pad ", 1000) + "…[pamd: cut]…" + strings.Repeat("pad ", 1000) + "*/; DROP TABLE audit_log",
		Truncated: &tunnel.Cut{Field: "command", Length: 2457621, SHA256: "ab12"}}
	if s := sqlSummary(r); !strings.HasPrefix(s, "SELECT 1 /*pad") || !strings.HasSuffix(s, "*/; DROP TABLE audit_log") || len([]rune(s)) > 210 {
		t.Fatalf("summary %q", s)
	}
	if n := truncatedNote(r); !strings.Contains(n, "truncated: command of 2457621 bytes, sha256 ab12") {
		t.Fatalf("note %q", n)
	}
	if n := truncatedNote(tunnel.Record{Truncated: &tunnel.Cut{Values: 2}}); !strings.Contains(n, "truncated: 2 long values cut") {
		t.Fatalf("note %q", n)
	}
	if n := truncatedNote(tunnel.Record{Truncated: &tunnel.Cut{Unread: true, Length: 5 << 20, SHA256: "cd"}}); !strings.Contains(n, "truncated: request of 5242880 bytes, sha256 cd") {
		t.Fatalf("note %q", n)
	}
	if truncatedNote(tunnel.Record{}) != "" {
		t.Fatal("a whole record marked truncated")
	}
}

// Lines of a channel without a terminal are printed per stream, quoted, so
// that recorded control bytes cannot act on the reader's terminal; a line
// is bounded and the unfinished ones are printed at the exit.
func TestStreamLines(t *testing.T) {
	var b strings.Builder
	l := newStreamLines(&b)
	l.add("c#0", "T1 ", "i", "echo hi\necho ")
	l.add("c#0", "T2 ", "o", "hi\r\n\x1b]0;owned\x07\n")
	l.add("c#0", "T3 ", "e", "warn")
	l.add("c#0", "T4 ", "i", "there\n")
	l.add("c#0", "T5 ", "o", strings.Repeat("x", 10000)+"\n")
	l.flush("c#0")
	got := b.String()
	for _, want := range []string{
		"T1 stdin  \"echo hi\"\n",
		"T2 stdout \"hi\"\n",
		"T2 stdout \"\\x1b]0;owned\\a\"\n",
		"T4 stdin  \"echo there\"\n",
		"T3 stderr \"warn\"\n",
		"(line cut)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") || len(got) > 6000 {
		t.Fatalf("raw control bytes or an unbounded line:\n%.300s", got)
	}
}
