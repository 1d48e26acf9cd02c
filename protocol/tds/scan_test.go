package tds

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

// sampleReply is a reply with a result set, an error and a count.
func sampleReply(t testing.TB, rows int) []byte {
	cols := []Column{{Name: "n", Type: TypeIntN}, {Name: "label", Type: TypeNVarChar}}
	b := AppendEnvChange(nil, EnvDatabase, "orders", "master")
	b = AppendColMetadata(b, cols)
	for i := 0; i < rows; i++ {
		var err error
		var label any = "row"
		if i%7 == 0 {
			label = nil
		}
		if b, err = AppendRow(b, cols, []any{int32(i), label}); err != nil {
			t.Fatal(err)
		}
	}
	b = AppendDone(b, TokenDone, DoneMore|DoneCount, 0xC1, uint64(rows))
	b = AppendDone(b, TokenDoneInProc, DoneMore|DoneCount, 0xC3, 5) // an UPDATE of 5 rows
	b = AppendMessage(b, TokenError, ServerMessage{Number: 208, State: 1, Class: 16, Text: "Invalid object name 'x'."})
	b = AppendReturnStatus(b, 0)
	return AppendDone(b, TokenDone, DoneError, 0, 0)
}

func TestReadReply(t *testing.T) {
	out, kept, _, err := ReadReply(append(AppendSSPI(nil, []byte{1, 2, 3}), sampleReply(t, 10)...), true)
	if err != nil {
		t.Fatal(err)
	}
	want := Outcome{RowsReturned: 10, RowsAffected: 5, Database: "orders",
		Errors: []ServerMessage{{Number: 208, State: 1, Class: 16, Text: "Invalid object name 'x'."}}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("outcome %+v, want %+v", out, want)
	}
	if !bytes.Equal(kept, sampleReply(t, 10)) {
		t.Fatal("the SSPI token was not the only thing dropped")
	}
	if _, _, _, err := ReadReply(sampleReply(t, 3)[:40], false); err == nil {
		t.Fatal("a cut reply read without error")
	}
}

// TestReplyScannerAnySplit: fed in pieces of any size, the scanner sees
// what reading the whole reply sees.
func TestReplyScannerAnySplit(t *testing.T) {
	reply := sampleReply(t, 2000)
	want, _, _, err := ReadReply(reply, false)
	if err != nil {
		t.Fatal(err)
	}
	var s ReplyScanner
	for round := 0; round < 50; round++ {
		for rest := reply; len(rest) > 0; {
			n := min(len(rest), 1+rand.IntN(300))
			s.Feed(rest[:n])
			rest = rest[n:]
		}
		if got := s.Finish(); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: %+v, want %+v", round, got, want)
		}
	}
	s.Feed(reply[:len(reply)-3])
	if got := s.Finish(); !got.Incomplete {
		t.Fatal("a cut reply was not marked incomplete")
	}
	s.Feed([]byte{0x01, 0x02})
	if got := s.Finish(); !got.Incomplete {
		t.Fatal("an unknown token was not marked incomplete")
	}
}
