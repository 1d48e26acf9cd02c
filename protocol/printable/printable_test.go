package printable

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"plain text, with spaces & punctuation: ok!", "plain text, with spaces & punctuation: ok!"},
		{"naïve café 日本語 ✓", "naïve café 日本語 ✓"},
		{`a\x1b b`, `a\x1b b`}, // printable text that looks like an escape stays
		{"\x1b[2K\rforged row\n", `\x1b[2K\rforged row\n`},
		{"tab\there", `tab\there`},
		{"nul\x00 del\x7f bell\a", `nul\x00 del\x7f bell\x07`},
		{"c1 \u009b2J", `c1 \u009b2J`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"nbsp\u00a0", `nbsp\u00a0`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"real \ufffd stays", "real \ufffd stays"},
		{"tag \U000e0041", `tag \U000e0041`},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEscape: whatever the input, the output is valid UTF-8 of printable
// runes only, and printable input is unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "alice", "\x1b[2K\rforged row\n", "\u202e\u009b\xff", "日本語\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: not UTF-8", s, out)
		}
		for _, r := range out {
			if !printable(r, utf8.RuneLen(r)) {
				t.Fatalf("Escape(%q) = %q holds %U", s, out, r)
			}
		}
		if out != s && allPrintable(s) {
			t.Fatalf("Escape changed printable %q to %q", s, out)
		}
	})
}

func allPrintable(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !printable(r, n) {
			return false
		}
		i += n
	}
	return true
}
