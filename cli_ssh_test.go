package main

import (
	"strings"
	"testing"
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
