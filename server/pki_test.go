package server

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// oldDataDir writes what a data dir held before the CAs were split: one CA
// that signed the server, every gateway and every SQL Server resource
// certificate. It returns the CA, the gateway dc1's certificate and key, and
// the resource's stored certificate.
func oldDataDir(t *testing.T, dir, resourceID string) (caDER []byte, gw tls.Certificate, oldResource *x509.Certificate) {
	t.Helper()
	key, _, err := store.LoadOrCreateMasterKey(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.OpenFile(t, filepath.Join(dir, "pamd.db"), key) // checked again when the test ends
	defer st.Close()
	caKey, _ := pki.NewKey()
	caDER, _ = pki.NewCA("pamd CA", caKey, 10*365*24*time.Hour)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, usage x509.ExtKeyUsage) ([]byte, crypto.Signer) {
		k, _ := pki.NewKey()
		der, err := pki.Issue(ca, caKey, k.Public(), pki.Leaf{CommonName: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: usage, Validity: 5 * 365 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	gwDER, gwKey := issue("dc1", x509.ExtKeyUsageClientAuth)
	gwLeaf, _ := x509.ParseCertificate(gwDER)
	resDER, resKey := issue("pamd erp", x509.ExtKeyUsageServerAuth)
	oldResource, _ = x509.ParseCertificate(resDER)
	caKeyPEM, _ := pki.EncodeKey(caKey)
	resKeyPEM, _ := pki.EncodeKey(resKey)
	err = st.Update(func(tx *store.Tx) error {
		for name, v := range map[string][]byte{
			"ca.cert": pki.EncodeCert(caDER), "ca.key": caKeyPEM,
			"mssql-tls/" + resourceID: append(append(pki.EncodeCert(resDER), pki.EncodeCert(caDER)...), resKeyPEM...),
		} {
			if err := tx.PutSecret(name, v); err != nil {
				return err
			}
		}
		now := time.Now().UTC()
		return tx.CreateGateway(&store.Gateway{ID: store.NewID(), Name: "dc1", CertSerial: gwLeaf.SerialNumber.String(), CreatedAt: now, EnrolledAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	return caDER, tls.Certificate{Certificate: [][]byte{gwDER}, PrivateKey: gwKey, Leaf: gwLeaf}, oldResource
}

// TestUpgradeFromOneCA: a data dir from before the split gets its own
// gateway and resource CAs at start, serves a leaf with the server identity
// under the CA everyone pinned, re-issues the resource certificate from the
// resource CA, and the gateway enrolled then still connects and renews.
func TestUpgradeFromOneCA(t *testing.T) {
	dir := t.TempDir()
	resID := store.NewID()
	caDER, oldGW, oldRes := oldDataDir(t, dir, resID)

	s, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", AdminPassword: "upgrade-test-password", GatewayCertLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.st.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	if s.pin != pki.Fingerprint(caDER) {
		t.Fatalf("the pin changed across the upgrade: %s, was %s", s.pin, pki.Fingerprint(caDER))
	}
	fps := map[string]bool{}
	serverCA, gatewayCA, resourceCA := s.ca.Certificates()
	for _, c := range []*x509.Certificate{serverCA, gatewayCA, resourceCA} {
		fps[pki.Fingerprint(c.Raw)] = true
	}
	if len(fps) != 3 {
		t.Fatal("the gateway and resource CAs are not separate CAs")
	}
	if err := pki.VerifyPinned(s.pin)(s.cert.Certificate, nil); err != nil {
		t.Fatalf("the server's leaf does not pass the pinned verifier: %v", err)
	}
	// The old resource certificate, whose key every gateway got, no longer
	// passes for the server.
	if err := pki.VerifyPinned(s.pin)([][]byte{oldRes.Raw, caDER}, nil); !errors.Is(err, pki.ErrNotServer) {
		t.Fatalf("old resource certificate vs the pinned verifier: %v", err)
	}
	chainPEM, _, err := s.ca.ResourceCertificate(&store.Resource{ID: resID, Name: "erp"})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := pki.DecodeCert([]byte(chainPEM))
	roots := x509.NewCertPool()
	roots.AddCert(resourceCA)
	if _, err := res.Verify(x509.VerifyOptions{Roots: roots}); err != nil || res.Equal(oldRes) {
		t.Fatalf("resource certificate not re-issued from the resource CA: %v", err)
	}
	if !strings.Contains(chainPEM, strings.TrimSpace(string(s.ca.ResourceCertPEM()))) || strings.Contains(chainPEM, strings.TrimSpace(string(s.ca.CertPEM()))) {
		t.Fatal("the resource chain should carry the resource CA, not the server CA")
	}

	// The gateway enrolled before the upgrade connects and renews.
	addr := ln.Addr().String()
	sess := gatewayHello(t, addr, s.pin, oldGW)
	newGW := renewOver(t, sess, oldGW)
	sess.Close()
	if err := newGW.Leaf.CheckSignatureFrom(gatewayCA); err != nil {
		t.Fatalf("renewed certificate is not from the gateway CA: %v", err)
	}
	if d := time.Until(newGW.Leaf.NotAfter); d > time.Hour+time.Minute {
		t.Fatalf("renewed certificate valid for %s, want the configured hour", d)
	}
	gatewayHello(t, addr, s.pin, newGW).Close()
	// Once the new certificate was used, the old one is retired.
	if err := tryHello(t, addr, s.pin, oldGW); err == nil || !strings.Contains(err.Error(), "not the current one") {
		t.Fatalf("the renewed-away certificate still connects: %v", err)
	}
}

func tryHello(t *testing.T, addr, pin string, cert tls.Certificate) error {
	t.Helper()
	tc := pki.PinnedClientConfig(pin, pki.ALPNGateway)
	tc.Certificates = []tls.Certificate{cert}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return err
	}
	sess, err := proxy.YamuxClient(c)
	if err != nil {
		c.Close()
		return err
	}
	defer sess.Close()
	st, err := sess.OpenStream()
	if err != nil {
		return err
	}
	h, _ := tunnel.NewHeader(tunnel.KindHello, tunnel.Hello{Name: cert.Leaf.Subject.CommonName, Version: "test"})
	h.WriteTo(st)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err != nil {
		return err
	}
	return r.Err()
}

func gatewayHello(t *testing.T, addr, pin string, cert tls.Certificate) *yamux.Session {
	t.Helper()
	tc := pki.PinnedClientConfig(pin, pki.ALPNGateway)
	tc.Certificates = []tls.Certificate{cert}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := proxy.YamuxClient(c)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sess.OpenStream()
	h, _ := tunnel.NewHeader(tunnel.KindHello, tunnel.Hello{Name: "dc1", Version: "test"})
	h.WriteTo(st)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		sess.Close()
		t.Fatalf("gateway hello: %v", err)
	}
	return sess
}

func renewOver(t *testing.T, sess *yamux.Session, held tls.Certificate) tls.Certificate {
	t.Helper()
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR("dc1", key)
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := tunnel.NewHeader(tunnel.KindRenew, tunnel.Renewal{CSR: string(csr), Serial: held.Leaf.SerialNumber.String()})
	h.WriteTo(st)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	m, err := tunnel.ReadMessage(st)
	var res tunnel.RenewalResult
	if err != nil || m.Type != tunnel.MsgCertificate || json.Unmarshal(m.Detail, &res) != nil {
		t.Fatalf("renew answer: %v %+v", err, m)
	}
	leaf, err := pki.DecodeCert([]byte(res.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}
