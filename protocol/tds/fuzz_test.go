package tds

import (
	"bytes"
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
	f.Add((&Login7{UserName: "u", Password: "p", SSPI: []byte{1, 2}, FeatureExt: []byte{0xFF}}).Append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		l, err := ParseLogin7(in)
		if err != nil {
			return
		}
		// What was accepted encodes and decodes to the same strings.
		back, err := ParseLogin7(l.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded LOGIN7 does not parse: %v", err)
		}
		if back.UserName != l.UserName || back.Database != l.Database || !bytes.Equal(back.SSPI, l.SSPI) {
			t.Fatal("re-encoding changed the login")
		}
	})
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
