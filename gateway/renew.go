package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
)

// credentials is the gateway's client certificate and key, which renewals
// replace while it runs, and the server CAs it pins, which renewals name
// (during a rotation of the server CA, the current and the next one).
type credentials struct {
	mu       sync.Mutex
	cert     tls.Certificate
	leaf     *x509.Certificate
	received time.Time // when the server issued it to this process; zero if read from disk
	pins     []string  // server CA fingerprints; a chain matching any is the server
	name     string    // the gateway's, for what to do when no pin matches
	// wake is the server's renew-now (a CA rotation's step): the renewal
	// loop renews at once.
	wake chan struct{}
}

func newCredentials(id *Identity) (*credentials, error) {
	cert, err := id.tlsCert()
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("gateway: certificate in data dir: %w", err)
	}
	return &credentials{cert: cert, leaf: leaf, pins: pinsOf(id), name: id.Name, wake: make(chan struct{}, 1)}, nil
}

// pinsOf is what an identity pins: its fingerprint, and the next server
// CA's during a rotation.
func pinsOf(id *Identity) []string {
	if id.NextFingerprint == "" {
		return []string{id.Fingerprint}
	}
	return []string{id.Fingerprint, id.NextFingerprint}
}

// verifyServer is the tls.Config hook: every dial checks the server's
// chain against the pins held now.
func (c *credentials) verifyServer(raw [][]byte, chains [][]*x509.Certificate) error {
	c.mu.Lock()
	pins := c.pins
	c.mu.Unlock()
	err := pki.VerifyPinnedAny(pins...)(raw, chains)
	if errors.Is(err, pki.ErrPinMismatch) {
		return fmt.Errorf("%w: the server's CA was rotated while this gateway was offline: enrol it again (pamd gateways token --name %s --replace)", err, c.name)
	}
	return err
}

// renewSoon wakes the renewal loop (the server's renew-now stream).
func (c *credentials) renewSoon() {
	select {
	case c.wake <- struct{}{}:
	default: // one is pending already
	}
}

func (c *credentials) current() (tls.Certificate, *x509.Certificate, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, c.leaf, c.received
}

// clientCertificate is the tls.Config hook: every dial shows the newest.
func (c *credentials) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cert, _, _ := c.current()
	return &cert, nil
}

// expired returns why the certificate can no longer connect, or nil.
func (g *gateway) expired() error {
	_, leaf, _ := g.creds.current()
	return expiryError(g.id.Name, leaf.NotAfter, time.Now())
}

// renewLoop renews the certificate once connected (one from before renewal
// existed may be valid for years), then at half of each new one's lifetime,
// until the connection drops.
func (g *gateway) renewLoop(sess *yamux.Session) {
	for {
		err := g.renew(sess)
		if sess.IsClosed() {
			return
		}
		_, leaf, received := g.creds.current()
		wait := leaf.NotAfter.Sub(received) / 2
		if err != nil {
			wait = min(max(time.Until(leaf.NotAfter)/4, time.Second), 30*time.Second)
			g.log.Warn("certificate renewal failed; retrying", "err", err, "in", wait.Round(time.Millisecond), "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		select {
		case <-time.After(wait):
		case <-g.creds.wake:
			g.log.Info("the server asked for a renewal now (a CA rotation)")
		case <-sess.CloseChan():
			return
		}
	}
}

// renew asks the server for a certificate for a new key over a renew
// stream and keeps it: on disk first (atomically), then for later dials.
// The connection itself keeps going; the server knows it renewed.
func (g *gateway) renew(sess *yamux.Session) error {
	key, err := pki.NewKey()
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	csr, err := pki.NewCSR(g.id.Name, key)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	_, held, _ := g.creds.current()
	h, err := tunnel.NewHeader(tunnel.KindRenew, tunnel.Renewal{CSR: string(csr), Serial: held.SerialNumber.String()})
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	st, err := sess.OpenStream()
	if err != nil {
		return fmt.Errorf("renew: open stream: %w", err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := h.WriteTo(st); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	r, err := tunnel.ReadReply(st)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	m, err := tunnel.ReadMessage(st)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	var res tunnel.RenewalResult
	if m.Type != tunnel.MsgCertificate || json.Unmarshal(m.Detail, &res) != nil {
		return fmt.Errorf("renew: unexpected answer %q", m.Type)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	certPEM := []byte(res.Certificate)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("renew: the server's certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("renew: the server's certificate: %w", err)
	}
	if leaf.Subject.CommonName != g.id.Name {
		return fmt.Errorf("renew: the server's certificate names %q, not this gateway", leaf.Subject.CommonName)
	}
	pins, err := renewedPins(res.ServerCAs)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	// Until the new pair is on disk, the old one stays in use: the server
	// keeps accepting it, and a restart finds it.
	g.creds.mu.Lock()
	saved := *g.id
	pinned := g.creds.pins
	g.creds.mu.Unlock()
	saved.CertPEM, saved.KeyPEM = certPEM, keyPEM
	if pins == nil || slices.Equal(pins, pinned) {
		err = saved.saveCert(g.cfg.DataDir)
	} else {
		saved.Fingerprint, saved.NextFingerprint = pins[0], ""
		if len(pins) > 1 {
			saved.NextFingerprint = pins[1]
		}
		err = saved.savePinsThenCert(g.cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	g.creds.mu.Lock()
	// The identity held follows what is on disk (the name never changes).
	g.id.Fingerprint, g.id.NextFingerprint, g.id.CertPEM, g.id.KeyPEM = saved.Fingerprint, saved.NextFingerprint, saved.CertPEM, saved.KeyPEM
	g.creds.cert, g.creds.leaf, g.creds.received = cert, leaf, time.Now()
	if pins != nil {
		g.creds.pins = pins
	}
	g.creds.mu.Unlock()
	g.log.Info("certificate renewed", "expires", leaf.NotAfter.UTC().Format(time.RFC3339), "issuer", leaf.Issuer.CommonName)
	if pins != nil && !slices.Equal(pins, pinned) {
		g.log.Info("server CAs pinned", "ca_fingerprints", strings.Join(pins, ", "))
	}
	return nil
}

// savePinsThenCert writes a renewal that changed the pins: the pins first,
// then the certificate, each file atomically. A crash in between leaves
// the new pins (what the server serves) with the old certificate, which
// the server still accepts until the gateway connects with the new one;
// the other order could leave the new certificate with pins the server no
// longer serves.
func (id *Identity) savePinsThenCert(dir string) error {
	meta, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(dir, identityFile, meta); err != nil {
		return err
	}
	return id.saveCert(dir)
}

// renewedPins checks the server CAs a renewal named (the current one, and
// the next during a rotation); nil: the server named none (an older
// server), so the pins stay.
func renewedPins(named []string) ([]string, error) {
	if len(named) == 0 {
		return nil, nil
	}
	if len(named) > 2 {
		return nil, fmt.Errorf("the server named %d CAs to pin (at most 2)", len(named))
	}
	pins := make([]string, len(named))
	for i, fp := range named {
		n, err := pki.NormalizeFingerprint(fp)
		if err != nil {
			return nil, fmt.Errorf("the server's CA to pin: %w", err)
		}
		pins[i] = n
	}
	return pins, nil
}
