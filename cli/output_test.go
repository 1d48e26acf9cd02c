package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// forged is what a login name or a reason held to forge an audit row: erase
// the line, go back to its start, print a row of one's own, start another.
const forged = "\x1b[2K\rforged row\n"

func noRawControls(t *testing.T, out string) {
	t.Helper()
	for _, c := range []string{"\x1b", "\r", "\t", "\u009b"} {
		if strings.Contains(out, c) {
			t.Fatalf("raw %q in the output:\n%s", c, out)
		}
	}
}

func TestWriteTableEscapesCells(t *testing.T) {
	var b strings.Builder
	err := writeTable(&b, []string{"SEQ", "ACTOR", "DETAIL"}, [][]string{
		{"1", forged, "tab\there"},
		{"2", "alice", "fine"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	noRawControls(t, out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines for a header and two rows:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[1], `\x1b[2K\rforged row\n`) || !strings.Contains(lines[1], `tab\there`) {
		t.Fatalf("the row does not show the escaped cells: %q", lines[1])
	}
	// The escaped cell is one column wide: the next row's columns line up.
	if strings.Index(lines[1], "tab") != strings.Index(lines[2], "fine") {
		t.Fatalf("columns do not line up:\n%s", out)
	}
}

func TestLogLinesEscapeAllButTheEndOfLine(t *testing.T) {
	var b strings.Builder
	w := logLines{&b}
	fmt.Fprintf(w, "12:00:00.000  c1#1  exec %s\n", "ls"+forged+"\u202e")
	fmt.Fprintf(w, "12:00:00.001  c1#1  exit status %d\n", 0)
	out := b.String()
	noRawControls(t, out)
	want := "12:00:00.000  c1#1  exec ls\\x1b[2K\\rforged row\\n\\u202e\n12:00:00.001  c1#1  exit status 0\n"
	if out != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
}

func TestPrintEscapedEscapesArguments(t *testing.T) {
	var b strings.Builder
	printEscaped(&b, "reason:    %s\nerror:     %v\nbytes:     %d\n", forged, errors.New("bad\x1b[31m"), 7)
	want := "reason:    \\x1b[2K\\rforged row\\n\nerror:     bad\\x1b[31m\nbytes:     7\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}
