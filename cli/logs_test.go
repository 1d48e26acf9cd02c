package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
)

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

// printRecords prints the server's summary of each record after its time
// and place (a connection's requests name no channel), prints the lines of
// a channel without a terminal before its exit, and only counts a
// terminal's bytes.
func TestPrintRecords(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(typ string, ch int, data, summary string) api.Record {
		return api.Record{Record: tunnel.Record{Time: at, ConnectionID: "conn1234567", Channel: ch, Type: typ, Data: data}, Summary: summary}
	}
	var b strings.Builder
	printRecords(&b, "s1", []api.Record{
		rec("exec", 0, "", "exec ls"),
		rec("o", 0, "a\nb", ""),
		rec("exit", 0, "", "exit status 0"),
		rec("pty", 1, "", "terminal xterm 80x24"),
		rec("o", 1, "\x1b[2Jhello", ""),
		rec("i", 1, "ls\r", ""),
		rec("sql", 0, "", "[app] SELECT 1  1 rows  0.5 ms"),
		rec("unknown", 0, "", ""),
	})
	got := b.String()
	where := at.Local().Format("15:04:05.000") + "  conn1234  "
	want := where[:len(where)-2] + "#0  exec ls\n" +
		where[:len(where)-2] + "#0  stdout \"a\"\n" +
		where[:len(where)-2] + "#0  stdout \"b\"\n" +
		where[:len(where)-2] + "#0  exit status 0\n" +
		where[:len(where)-2] + "#1  terminal xterm 80x24\n" +
		where + "[app] SELECT 1  1 rows  0.5 ms\n" +
		"terminal: 9 bytes output, 3 bytes input (pamd sessions play s1)\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// A stream cut by the gateway's recording budget says so, with the length
// and hash of the whole, before its tail.
func TestPrintRecordsShowsACutStream(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b strings.Builder
	printRecords(&b, "s1", []api.Record{
		{Record: tunnel.Record{Time: at, ConnectionID: "conn1234567", Type: "o", Data: "head\n"}},
		{Record: tunnel.Record{Time: at, ConnectionID: "conn1234567", Type: "o", Data: "tail\n",
			Truncated: &tunnel.Cut{Field: "data", Length: 3 << 20, SHA256: "abc123"}}},
	})
	got := b.String()
	for _, want := range []string{`stdout "head"`, "stdout [cut: 3145728 bytes in all, sha256 abc123; the start is above, the last 5 bytes follow]", `stdout "tail"`} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q in\n%s", want, got)
		}
	}
	if strings.Index(got, "cut:") > strings.Index(got, `"tail"`) {
		t.Fatalf("the cut note comes after the tail:\n%s", got)
	}
}
