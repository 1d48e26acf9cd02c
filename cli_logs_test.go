package main

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
