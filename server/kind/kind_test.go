package kind

import (
	"strings"
	"testing"

	"github.com/pamd/pamd/protocol/tunnel"
)

// TestTruncatedNote: a cut text is marked truncated with the whole's
// length and hash, or the number of values cut, or that its end was not
// read; a whole record is not marked.
func TestTruncatedNote(t *testing.T) {
	if n := TruncatedNote(&tunnel.Record{Truncated: &tunnel.Cut{Field: "command", Length: 2457621, SHA256: "ab12"}}); !strings.Contains(n, "truncated: command of 2457621 bytes, sha256 ab12") {
		t.Fatalf("note %q", n)
	}
	if n := TruncatedNote(&tunnel.Record{Truncated: &tunnel.Cut{Values: 2}}); !strings.Contains(n, "truncated: 2 long values cut") {
		t.Fatalf("note %q", n)
	}
	if n := TruncatedNote(&tunnel.Record{Truncated: &tunnel.Cut{Unread: true, Length: 5 << 20, SHA256: "cd"}}); !strings.Contains(n, "truncated: request of 5242880 bytes, sha256 cd") {
		t.Fatalf("note %q", n)
	}
	if TruncatedNote(&tunnel.Record{}) != "" {
		t.Fatal("a whole record marked truncated")
	}
}

// TestHeadTail: a long text keeps its start and its end.
func TestHeadTail(t *testing.T) {
	if s := HeadTail("short", 10); s != "short" {
		t.Fatalf("short text changed: %q", s)
	}
	s := HeadTail("BEGIN"+strings.Repeat("é", 500)+"END", 100)
	if !strings.HasPrefix(s, "BEGIN") || !strings.HasSuffix(s, "END") || !strings.Contains(s, " … ") || len([]rune(s)) > 105 {
		t.Fatalf("head and tail %q", s)
	}
}
