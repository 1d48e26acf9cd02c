package ca

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

// keyPair is one CA: its certificate (parsed and PEM) and key.
type keyPair struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// Authority is the server's internal PKI: separate CAs, each for one job.
// The embedded server CA is what clients and gateways pin, and it signs only
// the server's own certificate (the one with pki.ServerIdentity). Gateway
// client certificates come from the gateway CA, and the certificates
// gateways show SQL Server clients (whose keys travel to every gateway) from
// the resource CA, so neither can ever pass for the server.
type Authority struct {
	keyPair
	gateway  keyPair
	resource keyPair
	dbClient keyPair      // PKINIT certificates for Windows logins (dbclient.go)
	st       *store.Store // where the per-resource keys and certificates are kept
}

// The store's secrets holding each CA; "ca" is the server CA, which data
// dirs written before the split hold alone (the others are made at start).
var caSecrets = []struct{ name, commonName string }{
	{"ca", "pamd CA"},
	{"gateway-ca", "pamd gateway CA"},
	{"resource-ca", "pamd resource CA"},
	{"db-client-ca", "pamd db-client CA"},
}

// Load reads the CAs from the store, making those it does not hold yet.
func Load(st *store.Store) (*Authority, error) {
	a := Authority{st: st}
	err := st.Update(func(tx *store.Tx) error {
		for i, kp := range []*keyPair{&a.keyPair, &a.gateway, &a.resource, &a.dbClient} {
			var err error
			if *kp, err = loadOrCreateKeyPair(tx, caSecrets[i].name, caSecrets[i].commonName); err != nil {
				return fmt.Errorf("%s: %w", caSecrets[i].commonName, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("server: CA: %w", err)
	}
	return &a, nil
}

// loadOrCreateKeyPair reads the CA kept as secrets NAME.cert and NAME.key,
// creating it when the store has none.
func loadOrCreateKeyPair(tx *store.Tx, name, commonName string) (keyPair, error) {
	certPEM, err1 := tx.Secret(name + ".cert")
	keyPEM, err2 := tx.Secret(name + ".key")
	if err1 == nil && err2 == nil {
		cert, err := pki.DecodeCert(certPEM)
		if err != nil {
			return keyPair{}, err
		}
		key, err := pki.DecodeKey(keyPEM)
		if err != nil {
			return keyPair{}, err
		}
		return keyPair{cert: cert, key: key, certPEM: certPEM}, nil
	}
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return keyPair{}, err
		}
	}
	key, err := pki.NewKey()
	if err != nil {
		return keyPair{}, err
	}
	der, err := pki.NewCA(commonName, key, 10*365*24*time.Hour)
	if err != nil {
		return keyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, err
	}
	if keyPEM, err = pki.EncodeKey(key); err != nil {
		return keyPair{}, err
	}
	certPEM = pki.EncodeCert(der)
	if err := tx.PutSecret(name+".cert", certPEM); err != nil {
		return keyPair{}, err
	}
	if err := tx.PutSecret(name+".key", keyPEM); err != nil {
		return keyPair{}, err
	}
	return keyPair{cert: cert, key: key, certPEM: certPEM}, nil
}

// GatewayClientCAs is what a gateway's client certificate must chain to:
// the gateway CA, and the server CA for certificates enrolled before the
// gateway CA existed (they keep working until their gateway renews).
func (a *Authority) GatewayClientCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.gateway.cert)
	pool.AddCert(a.cert)
	return pool
}

// ServerCertificate returns the TLS certificate the port presents: the
// operator's (certFile, keyFile) when given, else one issued now by the internal CA for every
// name this server may be reached by, and the only certificate carrying the
// server identity (issued at every start, so a leaf from before the identity
// existed is never served again). The chain includes the CA so clients can
// pin it by fingerprint.
// listen and publicURL are where the server is reached, so their hosts are
// in the certificate.
func (a *Authority) ServerCertificate(certFile, keyFile, listen, publicURL string) (tls.Certificate, string, error) {
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
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
	if host, _, err := net.SplitHostPort(listen); err == nil {
		addHost(host)
	}
	if u, err := url.Parse(publicURL); err == nil {
		addHost(u.Hostname())
	}
	key, err := pki.NewKey()
	if err != nil {
		return tls.Certificate{}, "", err
	}
	der, err := pki.Issue(a.cert, a.key, key.Public(), pki.Leaf{
		CommonName: "pamd server", DNSNames: names, IPs: ips, Server: true,
		Usage: x509.ExtKeyUsageServerAuth, Validity: 365 * 24 * time.Hour,
	})
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key}, pki.Fingerprint(a.cert.Raw), nil
}

// IssueGateway signs a gateway's client certificate, from the gateway CA,
// valid for lifetime (the gateway renews it over the tunnel). The common
// name is the gateway's name; the server trusts nothing else from it.
func (a *Authority) IssueGateway(name string, pub crypto.PublicKey, lifetime time.Duration) ([]byte, *x509.Certificate, error) {
	der, err := pki.Issue(a.gateway.cert, a.gateway.key, pub, pki.Leaf{
		CommonName: name, Usage: x509.ExtKeyUsageClientAuth, Validity: lifetime,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("gateway certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway certificate: %w", err)
	}
	return der, c, nil
}

// CertPEM is the server CA's certificate, the one clients and gateways pin.
func (a *Authority) CertPEM() []byte { return a.certPEM }

// ResourceCertPEM is the resource CA's certificate: SQL Server clients that
// verify pamd's certificate trust it.
func (a *Authority) ResourceCertPEM() []byte { return a.resource.certPEM }

// Certificates are the three CAs' certificates: the server CA (pinned),
// the gateway CA and the resource CA.
func (a *Authority) Certificates() (server, gateway, resource *x509.Certificate) {
	return a.cert, a.gateway.cert, a.resource.cert
}
