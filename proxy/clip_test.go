package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestClipKeepsHeadTailLengthHash: a padded text keeps its start and its
// malicious end, with the whole's length and hash, however it is written.
func TestClipKeepsHeadTailLengthHash(t *testing.T) {
	whole := "SELECT 1 /*" + strings.Repeat("pad ", 1<<20) + "*/; DROP TABLE audit; -- é😀"
	sum := sha256.Sum256([]byte(whole))
	for _, chunk := range []int{1, 3, 4093, len(whole)} {
		c := NewClipper(LogTextMax)
		for i := 0; i < len(whole); i += chunk {
			c.Write([]byte(whole[i:min(i+chunk, len(whole))]))
		}
		text, cut := c.Text()
		if cut == nil || cut.Length != int64(len(whole)) || cut.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("chunk %d: cut %+v", chunk, cut)
		}
		if !strings.HasPrefix(text, "SELECT 1 /*pad") || !strings.HasSuffix(text, "*/; DROP TABLE audit; -- é😀") ||
			!strings.Contains(text, "sha256 "+cut.SHA256) || !utf8.ValidString(text) {
			t.Fatalf("chunk %d: kept %.80q … %q", chunk, text, text[max(0, len(text)-80):])
		}
		if js, _ := json.Marshal(text); len(js) > LogTextMax {
			t.Fatalf("chunk %d: %d JSON bytes", chunk, len(js))
		}
	}
}

// TestClipBoundIsJSON: padding that JSON escapes six-fold is cut by its
// encoded size; a text that fits is kept whole and not marked.
func TestClipBoundIsJSON(t *testing.T) {
	for _, pad := range []string{"<", "\x01", "\"", "é", "😀", "\xff"} {
		s := strings.Repeat(pad, LogTextMax) + "tail"
		text, cut := Clip(s, LogTextMax)
		js, _ := json.Marshal(text)
		if cut == nil || len(js) > LogTextMax || !strings.HasSuffix(text, "tail") {
			t.Errorf("pad %q: %d JSON bytes, cut %v", pad, len(js), cut != nil)
		}
	}
	short := strings.Repeat("a<", 1000)
	if text, cut := Clip(short, LogTextMax); text != short || cut != nil {
		t.Fatal("a short text was changed")
	}
}
