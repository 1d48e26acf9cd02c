package mssqlkind

import (
	"strings"
	"testing"

	"github.com/pamd/pamd/protocol/tunnel"
)

// TestSummaryShowsTruncation: a cut statement is marked truncated with the
// whole's length and hash, and its one-line summary keeps its end.
func TestSummaryShowsTruncation(t *testing.T) {
	ok := 1
	r := &tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "SELECT 1 /*" + strings.Repeat("pad ", 1000) + "…[pamd: cut]…" + strings.Repeat("pad ", 1000) + "*/; DROP TABLE audit_log",
		Truncated: &tunnel.Cut{Field: "command", Length: 2457621, SHA256: "ab12"}}
	if s := sqlSummary(r); !strings.HasPrefix(s, "SELECT 1 /*pad") || !strings.HasSuffix(s, "*/; DROP TABLE audit_log") || len([]rune(s)) > 210 {
		t.Fatalf("statement %q", s)
	}
	line := (&Kind{}).Summary(r)
	if !strings.HasPrefix(line, "[app] SELECT 1 /*pad") || !strings.Contains(line, "*/; DROP TABLE audit_log  0 rows  0.0 ms  [truncated: command of 2457621 bytes, sha256 ab12") {
		t.Fatalf("summary %q", line)
	}
}

// TestSummary: requests, procedure calls and failures as one line each;
// records every kind has rendered alike.
func TestSummary(t *testing.T) {
	ok, failed := 1, 0
	for _, c := range []struct {
		r    tunnel.Record
		want string
	}{
		{tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "SELECT\n  n\tFROM numbers", Rows: 3, DurationMS: 1.25}, "[app] SELECT n FROM numbers  3 rows  1.2 ms"},
		{tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "UPDATE t SET a = 1", Affected: 2}, "[app] UPDATE t SET a = 1  0 rows, 2 affected  0.0 ms"},
		{tunnel.Record{Type: "rpc", Status: &ok, Database: "app", Command: "sp_executesql", Data: "@p1=1"}, "[app] EXEC sp_executesql @p1=1  0 rows  0.0 ms"},
		{tunnel.Record{Type: "sql", Status: &failed, Database: "app", Command: "DROP TABLE nothing", Code: 102, Error: "bad"}, "[app] DROP TABLE nothing  error 102: bad  0.0 ms"},
		{tunnel.Record{Type: "attention", Status: &failed, Database: "app", Error: "cancelled"}, "[app]   failed: cancelled  0.0 ms"},
		{tunnel.Record{Type: "error", Data: "login failed"}, "error: login failed"},
		{tunnel.Record{Type: "o", Data: "x"}, ""},
	} {
		if got := (&Kind{}).Summary(&c.r); got != c.want {
			t.Errorf("%s record: %q, want %q", c.r.Type, got, c.want)
		}
	}
}

// TestStrictOption: tls_strict (TDS 8.0) is stored only when on, needs
// TLS, and reaches the descriptor.
func TestStrictOption(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		want string // "" stored as true, "-" not stored, else the error says this
	}{
		{map[string]string{"tls_strict": "true"}, ""},
		{map[string]string{"tls_strict": "false"}, "-"},
		{map[string]string{}, "-"},
		{map[string]string{"tls_strict": "true", "tls": "false"}, "cannot go with --tls=false"},
		{map[string]string{"tls_strict": "yes"}, "want true or false"},
	} {
		_, err := parse(c.opts)
		switch {
		case c.want == "" || c.want == "-":
			if err != nil {
				t.Fatalf("%v: %v", c.opts, err)
			}
			if _, kept := c.opts["tls_strict"]; kept != (c.want == "") || stored(c.opts).Strict != (c.want == "") {
				t.Fatalf("%v stored as %v", c.opts, c.opts)
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Fatalf("%v: %v, want an error saying %q", c.opts, err, c.want)
		}
	}
}
