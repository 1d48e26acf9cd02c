package ntlm

import (
	"testing"
	"time"
)

func FuzzParseAuthenticate(f *testing.F) {
	// A minimal valid message: the header with empty fields.
	b := append([]byte{}, signature...)
	b = append(b, TypeAuthenticate, 0, 0, 0)
	for len(b) < authHeaderSize {
		b = append(b, 0)
	}
	f.Add(b)
	f.Add(Challenge([8]byte{}, "D", "C", time.Unix(0, 0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := ParseAuthenticate(in)
		if err != nil {
			return
		}
		a.VerifyNTLMv2("p", [8]byte{})
	})
}
