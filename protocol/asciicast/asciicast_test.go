package asciicast

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Width: 80, Height: 24, Env: map[string]string{"TERM": "xterm"}})
	if err != nil {
		t.Fatal(err)
	}
	in := []Event{{0.1, "o", "$ "}, {0.5, "i", "ls\r"}, {0.4, "o", "a  b\r\n"}, {1.25, "r", "100x30"}}
	for _, e := range in {
		w.Write(e)
	}
	h, got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 2 || h.Width != 80 || len(got) != 4 {
		t.Fatalf("header %+v, %d events", h, len(got))
	}
	if got[2].Time != 0.5 { // raised: time never runs backwards
		t.Fatalf("event 3 at %v", got[2].Time)
	}
	if got[1].Data != "ls\r" || got[3].Code != "r" {
		t.Fatalf("events %+v", got)
	}
}

func TestReadRejects(t *testing.T) {
	for _, in := range []string{"", `{"version":1}`, "{\"version\":2}\n[1,\"o\"]", "{\"version\":2}\n[2,\"o\",\"a\"]\n[1,\"o\",\"b\"]", "{\"version\":2}\n[1,\"x\",\"a\"]"} {
		if _, _, err := Read(strings.NewReader(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add("{\"version\":2,\"width\":80,\"height\":24}\n[0.5,\"o\",\"hi\"]\n[1.0,\"r\",\"80x25\"]\n")
	f.Add("{\"version\":2}\n")
	f.Fuzz(func(t *testing.T, in string) {
		h, events, err := Read(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, *h)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := w.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		if _, again, err := Read(&buf); err != nil || len(again) != len(events) {
			t.Fatalf("rewritten recording does not read back: %v", err)
		}
	})
}

func TestClampSize(t *testing.T) {
	for in, want := range map[int]int{-5: 1, 0: 1, 1: 1, 80: 80, 1000: 1000, 1001: 1000, 1 << 40: 1000} {
		if got := ClampSize(in); got != want {
			t.Errorf("ClampSize(%d) = %d, want %d", in, got, want)
		}
	}
	h, _, err := Read(strings.NewReader("{\"version\":2,\"width\":4294967295,\"height\":0}\n"))
	if err != nil || h.Width != MaxSize || h.Height != MinSize {
		t.Fatalf("header read as %+v, %v", h, err)
	}
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct{ stream, in, want string }{
		{Stdout, "a\nb\r\nc", "a\r\nb\r\nc"},
		{Stdin, "\necho hi\n", "\r\necho hi\r\n"},
		{Stderr, "oops\n", "\x1b[31moops\r\n\x1b[0m"},
		{Stdout, "", ""},
	} {
		if got := Plain(tc.stream, tc.in); got != tc.want {
			t.Errorf("Plain(%q, %q) = %q, want %q", tc.stream, tc.in, got, tc.want)
		}
	}
}
