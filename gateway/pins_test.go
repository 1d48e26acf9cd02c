package gateway

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
)

// TestRenewedPins: the server CAs a renewal names are checked (at most
// two, fingerprints) and none means the pins stay.
func TestRenewedPins(t *testing.T) {
	a, b := "SHA256:"+strings.Repeat("aa", 32), "SHA256:"+strings.Repeat("bb", 32)
	if pins, err := renewedPins(nil); pins != nil || err != nil {
		t.Fatalf("an older server's renewal: %v %v", pins, err)
	}
	if pins, err := renewedPins([]string{a, strings.ToUpper(b[7:])}); err != nil || len(pins) != 2 || pins[0] != a || pins[1] != b {
		t.Fatalf("the current and the next CA: %v %v", pins, err)
	}
	for _, bad := range [][]string{{"nonsense"}, {a, b, a}} {
		if _, err := renewedPins(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// TestVerifyServerFollowsPins: a dial checks the server's chain against
// the pins held at that moment: a renewal naming the next CA makes its
// chain the server's.
func TestVerifyServerFollowsPins(t *testing.T) {
	chain := func(name string) ([][]byte, string) {
		caKey, _ := pki.NewKey()
		caDER, _ := pki.NewCA(name, caKey, time.Hour)
		ca, _ := x509.ParseCertificate(caDER)
		key, _ := pki.NewKey()
		leaf, _ := pki.Issue(ca, caKey, key.Public(), pki.Leaf{CommonName: "s", Usage: x509.ExtKeyUsageServerAuth, Validity: time.Hour, Server: true})
		return [][]byte{leaf, caDER}, pki.Fingerprint(caDER)
	}
	current, currentPin := chain("current")
	next, nextPin := chain("next")
	c := &credentials{pins: pinsOf(&Identity{Fingerprint: currentPin})}
	if c.verifyServer(current, nil) != nil || c.verifyServer(next, nil) == nil {
		t.Fatal("before the rotation only the current CA is the server")
	}
	c.pins = pinsOf(&Identity{Fingerprint: currentPin, NextFingerprint: nextPin})
	if c.verifyServer(current, nil) != nil || c.verifyServer(next, nil) != nil {
		t.Fatal("during the overlap both CAs are the server")
	}
	c.pins = []string{nextPin}
	if c.verifyServer(current, nil) == nil || c.verifyServer(next, nil) != nil {
		t.Fatal("after complete only the new CA is the server")
	}
	// A gateway that was offline through complete is told what to do.
	c = &credentials{pins: []string{currentPin}, name: "gw1"}
	err := c.verifyServer(next, nil)
	if !errors.Is(err, pki.ErrPinMismatch) || !strings.Contains(err.Error(), "the server's CA was rotated while this gateway was offline: enrol it again (pamd gateways token --name gw1 --replace)") {
		t.Fatalf("a chain no pin matches: %v", err)
	}
}
