package pki

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestVerifyPinned(t *testing.T) {
	caKey, _ := NewKey()
	caDER, _ := NewCA("ca", caKey, time.Hour)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := NewKey()
	server, _ := Issue(ca, caKey, key.Public(), Leaf{CommonName: "s", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: x509.ExtKeyUsageServerAuth, Validity: time.Hour, Server: true})
	client, _ := Issue(ca, caKey, key.Public(), Leaf{CommonName: "gw", Usage: x509.ExtKeyUsageClientAuth, Validity: time.Hour})
	otherKey, _ := NewKey()
	otherDER, _ := NewCA("other", otherKey, time.Hour)
	pin := Fingerprint(caDER)

	if err := VerifyPinned(pin)([][]byte{server, caDER}, nil); err != nil {
		t.Fatalf("good chain refused: %v", err)
	}
	if err := VerifyPinned(pin)([][]byte{server, otherDER}, nil); !errors.Is(err, ErrPinMismatch) {
		t.Fatalf("chain without the pinned CA: %v", err)
	}
	if err := VerifyPinned(Fingerprint(otherDER))([][]byte{server, otherDER}, nil); err == nil {
		t.Fatal("leaf not signed by the pinned CA was accepted")
	}
	// A gateway's client certificate from the same CA must not pass as a server.
	if err := VerifyPinned(pin)([][]byte{client, caDER}, nil); err == nil {
		t.Fatal("a client certificate was accepted as the server")
	}
	if err := VerifyPinned(pin)(nil, nil); err == nil {
		t.Fatal("empty chain accepted")
	}
}

// TestVerifyPinnedAny: during a CA rotation, a chain from either pinned CA
// is the server's; one from neither is refused naming both pins.
func TestVerifyPinnedAny(t *testing.T) {
	chain := func(name string) ([][]byte, string) {
		caKey, _ := NewKey()
		caDER, _ := NewCA(name, caKey, time.Hour)
		ca, _ := x509.ParseCertificate(caDER)
		key, _ := NewKey()
		leaf, _ := Issue(ca, caKey, key.Public(), Leaf{CommonName: "s", Usage: x509.ExtKeyUsageServerAuth, Validity: time.Hour, Server: true})
		return [][]byte{leaf, caDER}, Fingerprint(caDER)
	}
	current, currentPin := chain("current")
	next, nextPin := chain("next")
	other, _ := chain("other")
	verify := VerifyPinnedAny(currentPin, nextPin, "")
	for _, c := range [][][]byte{current, next} {
		if err := verify(c, nil); err != nil {
			t.Fatalf("a chain from a pinned CA refused: %v", err)
		}
	}
	err := verify(other, nil)
	if !errors.Is(err, ErrPinMismatch) || !strings.Contains(err.Error(), currentPin) || !strings.Contains(err.Error(), nextPin) {
		t.Fatalf("a chain from neither CA: %v", err)
	}
	if err := VerifyPinnedAny("", "")(current, nil); err == nil {
		t.Fatal("no pin at all accepted a chain")
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	want := "SHA256:" + "ab" + "00000000000000000000000000000000000000000000000000000000000000"[:62]
	for _, in := range []string{want, "sha256:" + want[7:], want[7:], "AB:00" + want[11:]} {
		got, err := NormalizeFingerprint(in)
		if err != nil || got != want {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := NormalizeFingerprint("SHA256:abc"); err == nil {
		t.Error("short fingerprint accepted")
	}
}

// TestVerifyPinnedServerIdentity: what the pinned verifier of the CLI, pamd
// connect and gateways accepts is the server's own certificate, never one
// whose key a gateway holds.
func TestVerifyPinnedServerIdentity(t *testing.T) {
	newCA := func(name string) ([]byte, *x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := NewKey()
		der, err := NewCA(name, k, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return der, c, k
	}
	serverDER, serverCA, serverKey := newCA("pamd CA")
	resDER, resCA, resKey := newCA("pamd resource CA")
	pin := Fingerprint(serverDER)
	key, _ := NewKey()
	issue := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, l Leaf) []byte {
		t.Helper()
		l.CommonName, l.Usage, l.Validity = "leaf", x509.ExtKeyUsageServerAuth, time.Hour
		der, err := Issue(ca, caKey, key.Public(), l)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	own := issue(serverCA, serverKey, Leaf{Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err := VerifyPinned(pin)([][]byte{own, serverDER}, nil); err != nil {
		t.Fatalf("the server's own certificate was refused: %v", err)
	}
	for name, chain := range map[string][][]byte{
		// What the server CA signed before the fix: the old per-resource SQL
		// Server certificate and the old server leaf, neither with the marker.
		"server CA leaf without the server identity": {issue(serverCA, serverKey, Leaf{DNSNames: []string{"localhost"}}), serverDER},
		"server CA leaf with a resource identity":    {issue(serverCA, serverKey, Leaf{Server: true, URIs: []*url.URL{ResourceIdentity("r1")}}), serverDER},
		"resource CA leaf, resource CA in chain":     {issue(resCA, resKey, Leaf{URIs: []*url.URL{ResourceIdentity("r1")}}), resDER, serverDER},
		"resource CA leaf claiming the server":       {issue(resCA, resKey, Leaf{Server: true}), resDER, serverDER},
	} {
		if err := VerifyPinned(pin)(chain, nil); err == nil {
			t.Errorf("%s: accepted as the server", name)
		}
	}
	if _, err := Issue(serverCA, serverKey, key.Public(), Leaf{CommonName: "x", URIs: []*url.URL{{Scheme: "urn", Opaque: "pamd:server"}}, Validity: time.Hour}); err == nil {
		t.Error("Issue let the server identity in through Leaf.URIs")
	}
	// An operator's own CA (--tls-cert) signed nothing pamd hands out: its
	// leaves are accepted without the marker.
	opKey, _ := NewKey()
	opTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "corp root", Organization: []string{"Example Corp"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	opDER, err := x509.CreateCertificate(rand.Reader, opTmpl, opTmpl, opKey.Public(), opKey)
	if err != nil {
		t.Fatal(err)
	}
	opCA, _ := x509.ParseCertificate(opDER)
	opLeaf := issue(opCA, opKey, Leaf{DNSNames: []string{"pam.example.com"}})
	if err := VerifyPinned(Fingerprint(opDER))([][]byte{opLeaf, opDER}, nil); err != nil {
		t.Fatalf("operator certificate refused: %v", err)
	}
}
