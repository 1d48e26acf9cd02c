package server

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/store"
)

// authority is the server's internal CA: it signs the server's own
// certificate and every gateway's client certificate.
type authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

func loadOrCreateCA(st *store.Store) (*authority, error) {
	var a *authority
	err := st.Update(func(tx *store.Tx) error {
		certPEM, err1 := tx.Secret("ca.cert")
		keyPEM, err2 := tx.Secret("ca.key")
		if err1 == nil && err2 == nil {
			cert, err := pki.DecodeCert(certPEM)
			if err != nil {
				return err
			}
			key, err := pki.DecodeKey(keyPEM)
			if err != nil {
				return err
			}
			a = &authority{cert: cert, key: key, certPEM: certPEM}
			return nil
		}
		if !errors.Is(err1, store.ErrNotFound) {
			return err1
		}
		key, err := pki.NewKey()
		if err != nil {
			return err
		}
		der, err := pki.NewCA("pamd CA", key, 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		cert, _ := x509.ParseCertificate(der)
		keyPEM, _ = pki.EncodeKey(key)
		certPEM = pki.EncodeCert(der)
		if err := tx.PutSecret("ca.cert", certPEM); err != nil {
			return err
		}
		if err := tx.PutSecret("ca.key", keyPEM); err != nil {
			return err
		}
		a = &authority{cert: cert, key: key, certPEM: certPEM}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("server: CA: %w", err)
	}
	return a, nil
}

// serverCertificate returns the TLS certificate the port presents: the
// operator's when given, else one issued now by the internal CA for every
// name this server may be reached by. The chain includes the CA so clients
// can pin it by fingerprint.
func (a *authority) serverCertificate(cfg *Config) (tls.Certificate, string, error) {
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		// The fingerprint to pin is the last certificate of the chain served.
		return c, pki.Fingerprint(c.Certificate[len(c.Certificate)-1]), nil
	}
	names := []string{"localhost"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	addHost := func(h string) {
		if h == "" {
			return
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
		addHost(host)
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil {
		addHost(u.Hostname())
	}
	key, err := pki.NewKey()
	if err != nil {
		return tls.Certificate{}, "", err
	}
	der, err := pki.Issue(a.cert, a.key, key.Public(), pki.Leaf{
		CommonName: "pamd server", DNSNames: names, IPs: ips,
		Usage: x509.ExtKeyUsageServerAuth, Validity: 365 * 24 * time.Hour,
	})
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key}, pki.Fingerprint(a.cert.Raw), nil
}

// issueGateway signs a gateway's client certificate. The common name is the
// gateway's name; the server trusts nothing else from it.
func (a *authority) issueGateway(name string, pub crypto.PublicKey) ([]byte, *x509.Certificate, error) {
	der, err := pki.Issue(a.cert, a.key, pub, pki.Leaf{
		CommonName: name, Usage: x509.ExtKeyUsageClientAuth, Validity: 5 * 365 * 24 * time.Hour,
	})
	if err != nil {
		return nil, nil, err
	}
	c, _ := x509.ParseCertificate(der)
	return der, c, nil
}
