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
