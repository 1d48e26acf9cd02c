package printable

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every rune that unicode.IsPrint rejects written as
// an escape in Go's syntax: \n, \r and \t by name, other ASCII control
// characters and bytes that are not UTF-8 as \xHH, other runes as \uHHHH
// or \UHHHHHHHH (C1 controls such as U+009B, which some terminals take for
// CSI, bidirectional controls, zero-width and non-ASCII spaces). Printable
// text, backslashes included, is returned as it is, so an escape in the
// output can also be text that looked like one; -o json tells them apart.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !printable(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case printable(r, n):
			b.WriteString(s[i : i+n])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError && n == 1, r < utf8.RuneSelf:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// printable says whether rune r, n bytes long, can be printed as it is. An
// invalid byte decodes as RuneError of length 1; a real U+FFFD is 3 long
// and prints.
func printable(r rune, n int) bool {
	return unicode.IsPrint(r) && !(r == utf8.RuneError && n == 1)
}
