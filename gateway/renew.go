package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
)

// credentials is the gateway's client certificate and key, which renewals
// replace while it runs.
type credentials struct {
	mu       sync.Mutex
	cert     tls.Certificate
	leaf     *x509.Certificate
	received time.Time // when the server issued it to this process; zero if read from disk
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
	return &credentials{cert: cert, leaf: leaf}, nil
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
	// Until the new pair is on disk, the old one stays in use: the server
	// keeps accepting it, and a restart finds it.
	saved := *g.id
	saved.CertPEM, saved.KeyPEM = certPEM, keyPEM
	if err := saved.saveCert(g.cfg.DataDir); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	g.creds.mu.Lock()
	g.creds.cert, g.creds.leaf, g.creds.received = cert, leaf, time.Now()
	g.creds.mu.Unlock()
	g.log.Info("certificate renewed", "expires", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}
