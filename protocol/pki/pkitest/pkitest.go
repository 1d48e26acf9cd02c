package pkitest

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
)

// Pair is a CA and one leaf it signed.
type Pair struct {
	CA    *x509.Certificate
	CAKey crypto.Signer
	CAPEM []byte // the CA certificate

	Leaf    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // the leaf alone
	KeyPEM  []byte
	// Cert is the leaf and its key, with the CA after the leaf in its chain
	// (a client that pins the CA's fingerprint finds it there).
	Cert tls.Certificate
}

// New makes a CA named after the leaf and a leaf as l says. Fields left
// zero in l are: CommonName "test", IPs 127.0.0.1, Usage server auth,
// Validity one hour. A failure fails the test.
func New(t testing.TB, l pki.Leaf) *Pair {
	t.Helper()
	if l.CommonName == "" {
		l.CommonName = "test"
	}
	if l.IPs == nil {
		l.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if l.Usage == 0 {
		l.Usage = x509.ExtKeyUsageServerAuth
	}
	if l.Validity == 0 {
		l.Validity = time.Hour
	}
	p := &Pair{}
	var err error
	if p.CAKey, err = pki.NewKey(); err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	caDER, err := pki.NewCA(l.CommonName+" test CA", p.CAKey, l.Validity)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	if p.CA, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	if p.Key, err = pki.NewKey(); err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	der, err := pki.Issue(p.CA, p.CAKey, p.Key.Public(), l)
	if err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	if p.Leaf, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	if p.KeyPEM, err = pki.EncodeKey(p.Key); err != nil {
		t.Fatalf("pkitest: %v", err)
	}
	p.CAPEM, p.CertPEM = pki.EncodeCert(caDER), pki.EncodeCert(der)
	p.Cert = tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: p.Key, Leaf: p.Leaf}
	return p
}

// ServerConfig is a TLS server configuration that presents the leaf.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{p.Cert}}
}

// Pool holds the CA alone, for a client's RootCAs.
func (p *Pair) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return pool
}

// Fingerprint is the CA's fingerprint, as pamd clients pin it.
func (p *Pair) Fingerprint() string { return pki.Fingerprint(p.CA.Raw) }
