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
	seed, _ := (&Login7{UserName: "u", Password: "p", SSPI: []byte{1, 2}, FeatureExt: []byte{0xFF}}).Append(nil)
	f.Add(seed)
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
	f.Add("host", "app", "client", "orders", "", uint16(0), uint16(0), []byte{0xFF})
	f.Add(strings.Repeat("h", 30000), strings.Repeat("a", 2000), strings.Repeat("c", 736), "x", "", uint16(0), uint16(0), []byte(nil))
	f.Add(strings.Repeat("h", 128), strings.Repeat("a", 128), strings.Repeat("c", 128), strings.Repeat("d", 128), strings.Repeat("f", 260), uint16(0xFFFF), uint16(3), []byte{0x0A, 1, 0, 0, 0, 1, 0xFF})
	f.Fuzz(func(t *testing.T, host, app, clt, db, atch string, sspiLen, sspiMore uint16, feat []byte) {
		if len(feat) == 0 {
			feat = nil
		}
		// What Append is given as UTF-8 it sends as UTF-16: invalid bytes
		// become U+FFFD, as a []rune conversion makes them.
		host, app, clt, db, atch = norm(host), norm(app), norm(clt), norm(db), norm(atch)
		l := &Login7{TDSVersion: 0x74000004, HostName: host, UserName: "app", Password: "Stored-Secret-1", AppName: app,
			CltIntName: clt, Database: db, AtchDBFile: atch, ChangePassword: "Next-Secret-2",
			SSPI: bytes.Repeat([]byte{0x60}, int(sspiLen)+int(sspiMore)), FeatureExt: feat}
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
	f.Add(sampleReply(f, 3))
	f.Add(AppendLoginAck(AppendEnvChange(nil, EnvDatabase, "db", "master"), 0x74000004, "x", 16, 0, 1))
	f.Add([]byte{TokenColMetadata, 1, 0, 0, 0, 0, 0, 0, 0, 0xF1, 1, 1, 'a', 0, 1, 'b', 0, 1, 0, 'c', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadReply(b, true)
		var s ReplyScanner
		half := len(b) / 2
		s.Feed(b[:half])
		s.Feed(b[half:])
		s.Finish()
	})
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
