package ntlm_test

import (
	"testing"
	"time"

	"github.com/microsoft/go-mssqldb/integratedauth/ntlm"
	"github.com/microsoft/go-mssqldb/msdsn"

	pamdntlm "github.com/pamd/pamd/protocol/ntlm"
)

// TestAgainstARealClient runs go-mssqldb's NTLM client (what SQL Server
// clients on Linux use) against the challenge built here.
func TestAgainstARealClient(t *testing.T) {
	for _, tt := range []struct {
		password string
		ok       bool
	}{{"Win-Pass-1", true}, {"wrong", false}} {
		a, err := ntlm.AuthProvider.GetIntegratedAuthenticator(msdsn.Config{User: `EXAMPLE\alice`, Password: tt.password})
		if err != nil {
			t.Fatal(err)
		}
		neg, err := a.InitialBytes()
		if err != nil || pamdntlm.MessageType(neg) != pamdntlm.TypeNegotiate {
			t.Fatalf("negotiate: %x %v", neg, err)
		}
		challenge := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
		auth, err := a.NextBytes(pamdntlm.Challenge(challenge, "EXAMPLE", "STANDIN", time.Now()))
		if err != nil {
			t.Fatalf("client rejected the challenge: %v", err)
		}
		m, err := pamdntlm.ParseAuthenticate(auth)
		if err != nil {
			t.Fatal(err)
		}
		if m.User != "alice" || m.Domain != "EXAMPLE" {
			t.Fatalf("user %q domain %q", m.User, m.Domain)
		}
		if got := m.VerifyNTLMv2("Win-Pass-1", challenge); got != tt.ok {
			t.Fatalf("password %q verified %v", tt.password, got)
		}
		if m.VerifyNTLMv2("Win-Pass-1", [8]byte{9}) {
			t.Fatal("verified against another challenge")
		}
	}
}
