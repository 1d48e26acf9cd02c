package pkitest_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
)

// TestPairServesTLS: a client that trusts the CA, or pins it as pamd
// clients do, completes a handshake with the leaf over a pipe; one that
// trusts another CA, or asks for another name, does not.
func TestPairServesTLS(t *testing.T) {
	p := pkitest.New(t, pki.Leaf{CommonName: "srv", Server: true})
	other := pkitest.New(t, pki.Leaf{})
	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"trusts the CA", &tls.Config{RootCAs: p.Pool(), ServerName: "127.0.0.1"}, true},
		{"pins the CA", pki.PinnedClientConfig(p.Fingerprint(), pki.ALPNTunnel), true},
		{"trusts another CA", &tls.Config{RootCAs: other.Pool(), ServerName: "127.0.0.1"}, false},
		{"pins another CA", pki.PinnedClientConfig(other.Fingerprint(), pki.ALPNTunnel), false},
		{"another name", &tls.Config{RootCAs: p.Pool(), ServerName: "example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			srv := tls.Server(a, p.ServerConfig())
			go func() { srv.Handshake(); srv.Close() }()
			err := tls.Client(b, tt.client).Handshake()
			if (err == nil) != tt.ok {
				t.Fatalf("handshake: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Fatalf("PEM pair: %v", err)
	}
	if ca, _ := x509.ParseCertificate(p.Cert.Certificate[1]); ca == nil || !ca.IsCA {
		t.Fatal("the chain does not end with the CA")
	}
}
