package pki

import (
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"
)

func TestVerifyPinned(t *testing.T) {
	caKey, _ := NewKey()
	caDER, _ := NewCA("ca", caKey, time.Hour)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := NewKey()
	server, _ := Issue(ca, caKey, key.Public(), Leaf{CommonName: "s", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: x509.ExtKeyUsageServerAuth, Validity: time.Hour})
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
