package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"unicode/utf8"

	"github.com/pamd/pamd/protocol/tunnel"
)

// The command logs' bounds, in bytes of the text's JSON encoding (where a
// control character or '<', '>', '&' takes 6), so that no padding can push
// a record past tunnel.MaxRecordBody (256 KiB) and out of the log.
const (
	// LogTextMax bounds a whole logged statement: a SQL batch, an RPC
	// call's parameters, a MongoDB command.
	LogTextMax = 128 << 10
	// LogValueMax bounds one value inside a statement: an RPC parameter,
	// a MongoDB string.
	LogValueMax = 64 << 10
	// LogNoteMax bounds the other texts of a record (a server's error
	// message, the procedures an RPC names).
	LogNoteMax = 8 << 10
)

// markerMax is room for the marker between head and tail.
const markerMax = 160

// Clipper keeps a text for a log as it streams by: the whole while its JSON
// encoding fits max bytes; else its head and its tail, each half of that,
// and the whole's length and SHA-256. Memory stays within about 2×max.
type Clipper struct {
	max        int
	buf        []byte // the whole while it fits, then the head
	cost       int    // of buf, in JSON bytes
	cut        bool
	tail       []byte // the last bytes seen once cut (at least max/2)
	n          int64
	sum        hash.Hash
	incomplete []byte // a rune split across writes
}

// NewClipper returns a Clipper for texts of at most max JSON bytes.
func NewClipper(max int) *Clipper {
	return &Clipper{max: max, sum: sha256.New()}
}

// Write adds UTF-8 text; a rune may be split across writes.
func (c *Clipper) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.sum.Write(p)
	if c.cut {
		c.keepTail(p)
		return len(p), nil
	}
	b := p
	if len(c.incomplete) > 0 {
		b = append(c.incomplete, p...)
		c.incomplete = nil
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size < 4 && !utf8.FullRune(b[i:]) {
			c.incomplete = append([]byte(nil), b[i:]...)
			break
		}
		if c.cost+jsonCost(r, size) > c.max {
			c.cut = true
			c.keepTail(c.buf)
			c.keepTail(b[i:])
			c.buf = c.buf[:headLen(c.buf, (c.max-markerMax)/2)]
			c.incomplete = nil
			return len(p), nil
		}
		c.cost += jsonCost(r, size)
		c.buf = append(c.buf, b[i:i+size]...)
		i += size
	}
	return len(p), nil
}

// WriteString adds UTF-8 text.
func (c *Clipper) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// keepTail keeps the last max/2 bytes at least: a rune's JSON encoding is
// never shorter than its UTF-8, so that holds the tail's budget.
func (c *Clipper) keepTail(p []byte) {
	keep := c.max / 2
	c.tail = append(c.tail, p...)
	if len(c.tail) > 2*keep {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-keep:]...)
	}
}

// Text returns the text to log and, when it was cut, what the record says
// about the whole (tunnel.Cut with Length and SHA256; the caller sets Field).
func (c *Clipper) Text() (string, *tunnel.Cut) {
	if !c.cut {
		return string(append(c.buf, c.incomplete...)), nil
	}
	tail := tailFrom(c.tail, (c.max-markerMax)/2)
	cut := &tunnel.Cut{Length: c.n, SHA256: hex.EncodeToString(c.sum.Sum(nil))}
	marker := fmt.Sprintf("…[pamd: cut %d of %d bytes; sha256 %s]…", c.n-int64(len(c.buf))-int64(len(tail)), c.n, cut.SHA256)
	return string(c.buf) + marker + string(tail), cut
}

// Clip is a Clipper's result for a text at hand.
func Clip(s string, max int) (string, *tunnel.Cut) {
	if len(s) <= max/6 { // fits however it escapes: the common case, cheaply
		return s, nil
	}
	c := NewClipper(max)
	c.WriteString(s)
	return c.Text()
}

// headLen is how much of b (whole runes) fits budget JSON bytes.
func headLen(b []byte, budget int) int {
	cost := 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if cost += jsonCost(r, size); cost > budget {
			return i
		}
		i += size
	}
	return len(b)
}

// tailFrom is the end of b (whole runes) that fits budget JSON bytes.
func tailFrom(b []byte, budget int) []byte {
	cost, i := 0, len(b)
	for i > 0 {
		r, size := utf8.DecodeLastRune(b[:i])
		if cost += jsonCost(r, size); cost > budget {
			break
		}
		i -= size
	}
	for i < len(b) && !utf8.RuneStart(b[i]) {
		i++ // never start inside a rune
	}
	return b[i:]
}

// jsonCost is at least what encoding/json writes for a rune of size bytes.
func jsonCost(r rune, size int) int {
	switch {
	case r == utf8.RuneError && size == 1, r < 0x20, r == '<', r == '>', r == '&', r == 0x2028, r == 0x2029:
		return 6 // \u00XX, \ufffd
	case r == '"', r == '\\':
		return 2
	}
	return size
}
