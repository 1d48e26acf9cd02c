package tds

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzReadMessage(f *testing.F) {
	f.Add(specLogin7)
	var buf bytes.Buffer
	WriteMessage(&buf, TypePrelogin, Prelogin{PreloginEncryption: {EncryptOn}}.Append(nil), 4096)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in), 1<<20)
		if err != nil {
			return
		}
		switch m.Type {
		case TypePrelogin:
			if p, err := ParsePrelogin(m.Payload); err == nil {
				if _, err := ParsePrelogin(p.Append(nil)); err != nil {
					t.Fatalf("re-encoded PRELOGIN does not parse: %v", err)
				}
			}
		case TypeLogin7:
			ParseLogin7(m.Payload)
		}
	})
}

func FuzzParseLogin7(f *testing.F) {
	f.Add(specLogin7[HeaderLen:])
	seed, _ := (&Login7{TDSVersion: uint32(Version74), UserName: "u", Password: "p", SSPI: []byte{1, 2}, FeatureExt: []byte{0xFF}}).Append(nil)
	f.Add(seed)
	seed71, _ := (&Login7{TDSVersion: uint32(Version71Rev1), OptionFlags3: Flags3Extension, UserName: "u", Password: "p"}).Append(nil)
	seed71[27] |= Flags3Extension // as tedious sets it at 7.1, with no extension
	f.Add(seed71)
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := ParseLogin7(in)
		if err != nil {
			return
		}
		// What was accepted encodes and decodes to the same login.
		enc, err := l.Append(nil)
		if err != nil {
			t.Fatalf("an accepted LOGIN7 does not encode: %v", err)
		}
		back, err := ParseLogin7(enc)
		if err != nil {
			t.Fatalf("re-encoded LOGIN7 does not parse: %v", err)
		}
		sameLogin(t, l, back)
	})
}

// FuzzLogin7Append: whatever the fields, Append either refuses them or
// writes a LOGIN7 that reads back the same; no field lands on another's bytes.
func FuzzLogin7Append(f *testing.F) {
	f.Add("host", "app", "client", "orders", "", uint16(0), uint16(0), []byte{0xFF}, uint32(Version74))
	f.Add(strings.Repeat("h", 30000), strings.Repeat("a", 2000), strings.Repeat("c", 736), "x", "", uint16(0), uint16(0), []byte(nil), uint32(Version72))
	f.Add(strings.Repeat("h", 128), strings.Repeat("a", 128), strings.Repeat("c", 128), strings.Repeat("d", 128), strings.Repeat("f", 260), uint16(0xFFFF), uint16(3), []byte{0x0A, 1, 0, 0, 0, 1, 0xFF}, uint32(Version80))
	f.Add("host", "app", "client", "orders", "", uint16(100), uint16(0), []byte(nil), uint32(Version71Rev1))
	f.Fuzz(func(t *testing.T, host, app, clt, db, atch string, sspiLen, sspiMore uint16, feat []byte, version uint32) {
		if len(feat) == 0 {
			feat = nil
		}
		// What Append is given as UTF-8 it sends as UTF-16: invalid bytes
		// become U+FFFD, as a []rune conversion makes them.
		host, app, clt, db, atch = norm(host), norm(app), norm(clt), norm(db), norm(atch)
		l := &Login7{TDSVersion: version, HostName: host, UserName: "app", Password: "Stored-Secret-1", AppName: app,
			CltIntName: clt, Database: db, AtchDBFile: atch,
			SSPI: bytes.Repeat([]byte{0x60}, int(sspiLen)+int(sspiMore)), FeatureExt: feat}
		if !Version(version).Before72() { // 7.0 and 7.1 have no ChangePassword
			l.ChangePassword = "Next-Secret-2"
		}
		enc, err := l.Append(nil)
		if err != nil {
			return
		}
		back, err := ParseLogin7(enc)
		if err != nil {
			t.Fatalf("encoded LOGIN7 does not parse: %v", err)
		}
		sameLogin(t, l, back)
	})
}

func norm(s string) string { return string([]rune(s)) }

func sameLogin(t *testing.T, a, b *Login7) {
	t.Helper()
	if a.HostName != b.HostName || a.UserName != b.UserName || a.Password != b.Password || a.AppName != b.AppName ||
		a.ServerName != b.ServerName || a.CltIntName != b.CltIntName || a.Language != b.Language || a.Database != b.Database ||
		a.AtchDBFile != b.AtchDBFile || a.ChangePassword != b.ChangePassword || !bytes.Equal(a.SSPI, b.SSPI) ||
		!bytes.Equal(a.FeatureExt, b.FeatureExt) {
		t.Fatalf("re-encoding changed the login: %+v → %+v", a, b)
	}
}

func FuzzParsePrelogin(f *testing.F) {
	f.Add(Prelogin{PreloginVersion: make([]byte, 6), PreloginEncryption: {EncryptNotSup}}.Append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		ParsePrelogin(in)
	})
}

func FuzzReadReply(f *testing.F) {
	login, _ := (&Tokens{V: Version74}).EnvChange(EnvDatabase, "db", "master").LoginAck("x", 16, 0, 1).Bytes()
	f.Add(sampleReply(f, Version74, 3), uint32(Version74))
	f.Add(sampleReply(f, Version71Rev1, 3), uint32(Version71Rev1))
	f.Add(login, uint32(Version71))
	f.Add([]byte{TokenColMetadata, 1, 0, 0, 0, 0, 0, 0, 0, 0xF1, 1, 1, 'a', 0, 1, 'b', 0, 1, 0, 'c', 0, 0}, uint32(Version72))
	f.Add([]byte{TokenColMetadata, 1, 0, 0, 0, 0, 0, 0x23, 0x10, 0, 0, 0, 0x09, 0x04, 0xD0, 0, 0x34, 1, 0, 't', 0, 1, 'c', 0}, uint32(Version71))
	f.Fuzz(func(t *testing.T, b []byte, version uint32) {
		v := Version(version)
		ReadReply(b, v, true)
		s := NewReplyScanner(v)
		half := len(b) / 2
		s.Feed(b[:half])
		s.Feed(b[half:])
		s.Finish()
	})
}

// FuzzTokens: what the writers build in a version's layout reads back, in
// that layout, as what was written; what does not fit is refused, and a
// refused token leaves nothing behind.
func FuzzTokens(f *testing.F) {
	f.Add(uint32(Version71Rev1), uint64(3), "orders", "Invalid object name 'x'.", int32(3), "label", 2)
	f.Add(uint32(Version74), uint64(1)<<40, "db", "", int32(-1), "", 0)
	f.Add(uint32(Version70), uint64(1)<<33, strings.Repeat("d", 300), "m", int32(70000), "c", 1)
	f.Fuzz(func(t *testing.T, version uint32, count uint64, db, text string, line int32, col string, rows int) {
		v := Version(version)
		rows = min(max(rows, 0), 50)
		cols := []Column{{Name: col, Type: TypeNVarChar}, {Name: "n", Type: TypeIntN}}
		values := make([][]any, rows)
		for i := range values {
			values[i] = []any{text, int32(i)}
		}
		tk := &Tokens{V: v}
		b, err := tk.EnvChange(EnvDatabase, db, "").Result(cols, values...).Done(TokenDone, DoneMore|DoneCount, 0xC1, uint64(rows)).
			Message(TokenError, ServerMessage{Number: 50000, Class: 16, Text: text, Line: line}).
			Done(TokenDone, DoneCount, 0xC3, count).Bytes()
		for _, one := range [][]byte{
			must(AppendDone(nil, v, TokenDone, 0, 0, count)),
			must(AppendEnvChange(nil, EnvDatabase, db, "")),
			must(AppendColMetadata(nil, v, cols)),
			must(AppendMessage(nil, v, TokenInfo, ServerMessage{Text: text, Line: line})),
		} {
			if one != nil {
				if _, _, _, err := ReadReply(one, v, false); err != nil {
					t.Fatalf("%v: a token the writer made does not read: %v", v, err)
				}
			}
		}
		for _, refused := range [][]byte{
			must(AppendColMetadata([]byte{0xEE}, v, cols)),
			must(AppendMessage([]byte{0xEE}, v, TokenInfo, ServerMessage{Text: text, Line: line})),
		} {
			if refused != nil && refused[0] != 0xEE {
				t.Fatal("a writer changed what came before")
			}
		}
		fits := len(encodeUTF16(db)) <= 510 && len(encodeUTF16(col)) <= 510 && len(encodeUTF16(text)) <= 8000 &&
			(!v.Before72() || (count <= 0xFFFFFFFF && line >= 0 && line <= 0xFFFF))
		if err != nil {
			if fits {
				t.Fatalf("%v: refused what fits: %v", v, err)
			}
			return
		}
		out, _, _, err := ReadReply(b, v, false)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if out.RowsReturned != uint64(rows) || out.RowsAffected != count || out.Database != norm(db) ||
			len(out.Errors) != 1 || out.Errors[0].Text != norm(text) || out.Errors[0].Line != lineAsRead(v, line) {
			t.Fatalf("%v: read back %+v", v, out)
		}
	})
}

// lineAsRead is a line number as its field holds it: 16 bits before 7.2.
func lineAsRead(v Version, line int32) int32 {
	if v.Before72() {
		return int32(uint16(line))
	}
	return line
}

// must is a token a writer made, or nil when it refused it.
func must(b []byte, err error) []byte {
	if err != nil {
		return nil
	}
	return b
}

func FuzzParseRPC(f *testing.F) {
	// sp_executesql N'SELECT @p1', N'@p1 int', @p1 = 42, by procedure id
	rpc := []byte{0xFF, 0xFF, 10, 0, 0, 0}
	stmt := encodeUTF16("SELECT @p1")
	rpc = append(rpc, 0, 0, TypeNVarChar, byte(len(stmt)), 0)
	rpc = append(rpc, Collation...)
	rpc = append(append(rpc, byte(len(stmt)), 0), stmt...)
	rpc = append(rpc, 3, '@', 0, 'p', 0, '1', 0, 0, TypeIntN, 4, 4, 42, 0, 0, 0)
	f.Add(rpc)
	f.Add(append(append([]byte{4, 0}, encodeUTF16("proc")...), 0, 0, 0x80, 0xFF, 0xFF, 12, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		calls, err := ParseRPC(b, 64)
		if err == nil && len(calls) == 0 {
			t.Fatal("no calls and no error")
		}
		for _, c := range calls {
			for _, p := range c.Params {
				if len(p.Value) > 64*6+8 {
					t.Fatalf("value of %d bytes past the bound", len(p.Value))
				}
			}
		}
	})
}

func FuzzWithoutFeatures(f *testing.F) {
	f.Add([]byte{0x01, 1, 0, 0, 0, 9, 0x02, 2, 0, 0, 0, 1, 2, 0x0A, 1, 0, 0, 0, 1, 0xFF})
	f.Add([]byte{0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := WithoutFeatures(b, FeatureFedAuth)
		if err == nil && out != nil {
			if again, err := WithoutFeatures(out, FeatureFedAuth); err != nil || string(again) != string(out) {
				t.Fatalf("filtering twice changed %x to %x (%v)", out, again, err)
			}
		}
	})
}
