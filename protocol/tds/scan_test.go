package tds

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// sampleReply is a reply with a result set, an error and a count, in the
// layout of v.
func sampleReply(t testing.TB, v Version, rows int) []byte {
	cols := []Column{{Name: "n", Type: TypeIntN}, {Name: "label", Type: TypeNVarChar}}
	values := make([][]any, rows)
	for i := range values {
		var label any = "row"
		if i%7 == 0 {
			label = nil
		}
		values[i] = []any{int32(i), label}
	}
	tk := &Tokens{V: v}
	b, err := tk.EnvChange(EnvDatabase, "orders", "master").
		Result(cols, values...).
		Done(TokenDone, DoneMore|DoneCount, 0xC1, uint64(rows)).
		Done(TokenDoneInProc, DoneMore|DoneCount, 0xC3, 5). // an UPDATE of 5 rows
		Message(TokenError, ServerMessage{Number: 208, State: 1, Class: 16, Text: "Invalid object name 'x'.", Line: 3}).
		ReturnStatus(0).
		ReturnValueInt(0, "@h", 7).
		Done(TokenDone, DoneError, 0, 0).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var allVersions = []Version{Version70, Version71, Version71Rev1, Version72, Version73A, Version73B, Version74, Version80}

func TestReadReply(t *testing.T) {
	for _, v := range allVersions {
		sspi, _ := AppendSSPI(nil, []byte{1, 2, 3})
		out, kept, _, err := ReadReply(append(sspi, sampleReply(t, v, 10)...), v, true)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		want := Outcome{RowsReturned: 10, RowsAffected: 5, Database: "orders",
			Errors: []ServerMessage{{Number: 208, State: 1, Class: 16, Text: "Invalid object name 'x'.", Line: 3}}}
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("%v: outcome %+v, want %+v", v, out, want)
		}
		if !bytes.Equal(kept, sampleReply(t, v, 10)) {
			t.Fatalf("%v: the SSPI token was not the only thing dropped", v)
		}
		if _, _, _, err := ReadReply(sampleReply(t, v, 3)[:40], v, false); err == nil {
			t.Fatalf("%v: a cut reply read without error", v)
		}
	}
}

// TestReplyLayouts: 7.0 and 7.1 have 4-byte DONE row counts and 2-byte
// user types, 7.2 and later 8 and 4; a reply read in the other layout does
// not read as the same reply.
func TestReplyLayouts(t *testing.T) {
	old, cur := sampleReply(t, Version71Rev1, 4), sampleReply(t, Version74, 4)
	// Three DONEs 4 bytes shorter, three user types (two columns and a
	// RETURNVALUE) 2 bytes shorter, the ERROR's line number 2 bytes shorter.
	if len(cur)-len(old) != 3*4+3*2+2 {
		t.Fatalf("the 7.4 reply is %d bytes longer than the 7.1 one", len(cur)-len(old))
	}
	want, _, _, _ := ReadReply(old, Version71, false)
	if got, _, _, err := ReadReply(old, Version74, false); err == nil && reflect.DeepEqual(got, want) {
		t.Fatal("a 7.1 reply read the same in the 7.4 layout")
	}
	// A login reply switches to the version LOGINACK names.
	tk := &Tokens{V: Version71Rev1}
	login, err := tk.EnvChange(EnvDatabase, "master", "").LoginAck("Microsoft SQL Server", 8, 0, 2039).
		Done(TokenDone, DoneCount, 0, 1).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	out, _, _, err := ReadReply(login, Version74, false)
	if err != nil || !out.LoginAck || out.Version != Version71Rev1 || out.RowsAffected != 1 {
		t.Fatalf("7.1 login reply read from a 7.4 LOGIN7: %+v, %v", out, err)
	}
}

// TestWritersRefuseWhatDoesNotFit: no field wraps or is cut silently.
func TestWritersRefuseWhatDoesNotFit(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := map[string]error{}
	_, cases["7.1 row count"] = AppendDone(nil, Version71, TokenDone, DoneCount, 0, 1<<32)
	_, cases["column name"] = AppendColMetadata(nil, Version74, []Column{{Name: long, Type: TypeIntN}})
	_, cases["no columns"] = AppendColMetadata(nil, Version74, nil)
	_, cases["env value"] = AppendEnvChange(nil, EnvDatabase, long, "")
	_, cases["message text"] = AppendMessage(nil, Version74, TokenError, ServerMessage{Text: strings.Repeat("x", 0x10000)})
	_, cases["message body"] = AppendMessage(nil, Version74, TokenError, ServerMessage{Text: strings.Repeat("x", MaxMessageText+1), ServerName: long[:255], ProcName: long[:255]})
	_, cases["7.1 line"] = AppendMessage(nil, Version71, TokenError, ServerMessage{Line: 70000})
	_, cases["value"] = AppendRow(nil, []Column{{Type: TypeNVarChar}}, []any{strings.Repeat("x", 4001)})
	_, cases["type"] = AppendRow(nil, []Column{{Type: TypeIntN}}, []any{"x"})
	_, cases["sspi"] = AppendSSPI(nil, make([]byte, 0x10000))
	_, cases["program"] = AppendLoginAck(nil, Version74, long, 1, 0, 0)
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := AppendMessage(nil, Version74, TokenError, ServerMessage{Text: strings.Repeat("x", MaxMessageText), ServerName: long[:255], ProcName: long[:255]}); err != nil {
		t.Errorf("the longest message text: %v", err)
	}
	if b, err := AppendDone(nil, Version71, TokenDone, DoneCount, 0, 1<<32-1); err != nil || len(b) != 9 {
		t.Errorf("7.1 DONE: %x, %v", b, err)
	}
}

// TestReplyScannerAnySplit: fed in pieces of any size, the scanner sees
// what reading the whole reply sees.
func TestReplyScannerAnySplit(t *testing.T) {
	for _, v := range []Version{Version71, Version74} {
		scanAnySplit(t, v)
	}
}

func scanAnySplit(t *testing.T, v Version) {
	reply := sampleReply(t, v, 2000)
	want, _, _, err := ReadReply(reply, v, false)
	if err != nil {
		t.Fatal(err)
	}
	s := NewReplyScanner(v)
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
