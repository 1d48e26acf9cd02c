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
	"sync"
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
// The server CA is what clients and gateways pin, and it signs only the
// server's own certificate (the one with pki.ServerIdentity). Gateway
// client certificates come from the gateway CA, and the certificates
// gateways show SQL Server clients (whose keys travel to every gateway) from
// the resource CA, so neither can ever pass for the server.
//
// Each CA can be rotated (rotate.go): a next CA kept beside the current
// one while both are trusted, then made current or dropped. The pairs are
// swapped under mu, so every reader takes them through pair and friends.
type Authority struct {
	st *store.Store // where the CAs, per-resource keys and certificates are kept

	// stepMu serialises the rotation steps: each builds the state it
	// swaps in under mu from what it read in its transaction.
	stepMu sync.Mutex

	mu      sync.RWMutex
	current map[string]keyPair // by type (TypeServer, …)
	next    map[string]keyPair // the rotations in progress, by type
	prev    map[string]keyPair // what completed rotations retired, by type: certificates alone (no key)
	// nextIssued are the gateway certificates (serials) the next gateway
	// CA issued, so status tells who renewed onto it.
	nextIssued map[string]bool
	// operatorPin is the fingerprint clients pin when the server serves
	// the operator's certificate (--tls-cert): the server CA's rotation
	// does not change what they see.
	operatorPin string
	// servedPin is the fingerprint of the last certificate of the chain
	// the server serves its own CA's certificate with (Serving): what
	// clients see, which a rotation's complete changes only once the
	// server serves a certificate from the new CA.
	servedPin string
}

// The CA types, as the API and pamd ca name them.
const (
	TypeServer   = "server"
	TypeGateway  = "gateway"
	TypeResource = "resource"
	TypeDBClient = "db-client"
)

// The store's secrets holding each CA (NAME.cert, NAME.key); "ca" is the
// server CA, which data dirs written before the split hold alone (the
// others are made at start).
var caSpecs = []struct{ typ, name, commonName string }{
	{TypeServer, "ca", "pamd CA"},
	{TypeGateway, "gateway-ca", "pamd gateway CA"},
	{TypeResource, "resource-ca", "pamd resource CA"},
	{TypeDBClient, "db-client-ca", "pamd db-client CA"},
}

// Load reads the CAs from the store, making those it does not hold yet,
// and the state of their rotations.
func Load(st *store.Store) (*Authority, error) {
	a := Authority{st: st, current: map[string]keyPair{}}
	err := st.Update(func(tx *store.Tx) error {
		for _, spec := range caSpecs {
			kp, err := loadOrCreateKeyPair(tx, spec.name, spec.commonName)
			if err != nil {
				return fmt.Errorf("%s: %w", spec.commonName, err)
			}
			a.current[spec.typ] = kp
		}
		return a.loadRotations(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("server: CA: %w", err)
	}
	return &a, nil
}

// pair is the current CA of a type.
func (a *Authority) pair(typ string) keyPair {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.current[typ]
}

// issuing is the CA of a type that signs now: the next one during a
// rotation of the gateway CA (so gateways renew onto it before it is
// made current), else the current one.
func (a *Authority) issuing(typ string) keyPair {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if n, ok := a.next[typ]; ok && typ == TypeGateway {
		return n
	}
	return a.current[typ]
}

// loadOrCreateKeyPair reads the CA kept as secrets NAME.cert and NAME.key,
// creating it when the store has none.
func loadOrCreateKeyPair(tx *store.Tx, name, commonName string) (keyPair, error) {
	certPEM, err1 := tx.Secret(name + ".cert")
	keyPEM, err2 := tx.Secret(name + ".key")
	if err1 == nil && err2 == nil {
		return parseKeyPair(certPEM, keyPEM)
	}
	for _, err := range []error{err1, err2} {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return keyPair{}, err
		}
	}
	kp, keyPEM, err := newKeyPair(commonName)
	if err != nil {
		return keyPair{}, err
	}
	if err := putKeyPair(tx, name, kp.certPEM, keyPEM); err != nil {
		return keyPair{}, err
	}
	return kp, nil
}

func parseKeyPair(certPEM, keyPEM []byte) (keyPair, error) {
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

// newKeyPair makes a CA valid for ten years; it returns its key in PEM too.
func newKeyPair(commonName string) (keyPair, []byte, error) {
	key, err := pki.NewKey()
	if err != nil {
		return keyPair{}, nil, err
	}
	der, err := pki.NewCA(commonName, key, 10*365*24*time.Hour)
	if err != nil {
		return keyPair{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return keyPair{}, nil, err
	}
	return keyPair{cert: cert, key: key, certPEM: pki.EncodeCert(der)}, keyPEM, nil
}

func putKeyPair(tx *store.Tx, name string, certPEM, keyPEM []byte) error {
	if err := tx.PutSecret(name+".cert", certPEM); err != nil {
		return err
	}
	return tx.PutSecret(name+".key", keyPEM)
}

// GatewayClientCAs is what a gateway's client certificate must chain to
// in the TLS handshake: the gateway CA (and the next one during its
// rotation), and the current server CA for certificates enrolled before
// the gateway CA existed (they keep working until their gateway renews).
// The gateway CA a completed rotation retired is in it too, so the
// handshake passes and admission refuses such a certificate with a message
// saying what to do (RetiredGatewayCert). A server CA a rotation retired
// is not: a rotated server CA never signed a gateway certificate (the
// gateway CA existed before any rotation).
func (a *Authority) GatewayClientCAs() *x509.CertPool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	pool := x509.NewCertPool()
	pool.AddCert(a.current[TypeGateway].cert)
	pool.AddCert(a.current[TypeServer].cert)
	for _, m := range []map[string]keyPair{a.next, a.prev} {
		if kp, ok := m[TypeGateway]; ok {
			pool.AddCert(kp.cert)
		}
	}
	return pool
}

// RetiredGatewayCert reports whether a gateway's certificate comes from
// the gateway CA a completed rotation retired: such a gateway must enrol
// again.
func (a *Authority) RetiredGatewayCert(c *x509.Certificate) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	old, ok := a.prev[TypeGateway]
	return ok && c.CheckSignatureFrom(old.cert) == nil
}

// ServerCertificate returns the TLS certificate the port presents: the
// operator's (certFile, keyFile) when given, else one issued now by the internal CA for every
// name this server may be reached by, and the only certificate carrying the
// server identity (issued at every start, so a leaf from before the identity
// existed is never served again). The chain includes the CA so clients can
// pin it by fingerprint.
// listen and publicURL are where the server is reached, so their hosts are
// in the certificate.
//
// After a rotation of the server CA completes, the server calls it again
// for a certificate from the new CA.
func (a *Authority) ServerCertificate(certFile, keyFile, listen, publicURL string) (tls.Certificate, string, error) {
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		// The fingerprint to pin is the last certificate of the chain served.
		pin := pki.Fingerprint(c.Certificate[len(c.Certificate)-1])
		a.mu.Lock()
		a.operatorPin = pin
		a.mu.Unlock()
		return c, pin, nil
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
	sca := a.pair(TypeServer)
	der, err := pki.Issue(sca.cert, sca.key, key.Public(), pki.Leaf{
		CommonName: "pamd server", DNSNames: names, IPs: ips, Server: true,
		Usage: x509.ExtKeyUsageServerAuth, Validity: 365 * 24 * time.Hour,
	})
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der, sca.cert.Raw}, PrivateKey: key}, pki.Fingerprint(sca.cert.Raw), nil
}

// IssueGateway signs a gateway's client certificate, from the gateway CA
// (the next one while it is rotated), valid for lifetime (the gateway
// renews it over the tunnel). The common name is the gateway's name; the
// server trusts nothing else from it. tx is the caller's transaction: a
// certificate from the next CA is noted in it, for the rotation's status
// (nil: not noted).
func (a *Authority) IssueGateway(tx *store.Tx, name string, pub crypto.PublicKey, lifetime time.Duration) ([]byte, *x509.Certificate, error) {
	issuer := a.issuing(TypeGateway)
	der, err := pki.Issue(issuer.cert, issuer.key, pub, pki.Leaf{
		CommonName: name, Usage: x509.ExtKeyUsageClientAuth, Validity: lifetime,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("gateway certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway certificate: %w", err)
	}
	if tx != nil && !issuer.cert.Equal(a.pair(TypeGateway).cert) {
		if err := a.noteNextIssued(tx, c.SerialNumber.String(), issuer); err != nil {
			return nil, nil, fmt.Errorf("gateway certificate: %w", err)
		}
	}
	return der, c, nil
}

// CertPEM is the server CA's certificate, the one clients and gateways pin.
func (a *Authority) CertPEM() []byte { return a.pair(TypeServer).certPEM }

// ResourceCertPEM is the resource CA's certificate: SQL Server clients that
// verify pamd's certificate trust it.
func (a *Authority) ResourceCertPEM() []byte { return a.pair(TypeResource).certPEM }

// Certificates are the three CAs' certificates: the server CA (pinned),
// the gateway CA and the resource CA.
func (a *Authority) Certificates() (server, gateway, resource *x509.Certificate) {
	return a.pair(TypeServer).cert, a.pair(TypeGateway).cert, a.pair(TypeResource).cert
}

// Serving records the chain the server serves now (its last certificate
// is what clients verify against): ServerPins advertise it.
func (a *Authority) Serving(chain [][]byte) {
	if len(chain) == 0 {
		return
	}
	a.mu.Lock()
	a.servedPin = pki.Fingerprint(chain[len(chain)-1])
	a.mu.Unlock()
}

// ServerPins are the fingerprints clients and gateways pin: current is the
// served chain's last certificate (the server CA's, or the operator's with
// --tls-cert); next, while the server CA is rotated, the next one's, and
// between a completed rotation and the server serving a certificate from
// the new CA, the new CA's (so nobody drops the pin of the chain still
// served). next is empty otherwise, and always with an operator
// certificate, which the rotation does not touch.
func (a *Authority) ServerPins() (current, next string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.operatorPin != "" {
		return a.operatorPin, ""
	}
	ca := pki.Fingerprint(a.current[TypeServer].cert.Raw)
	current = a.servedPin
	if current == "" {
		current = ca
	}
	if n, ok := a.next[TypeServer]; ok {
		next = pki.Fingerprint(n.cert.Raw)
	} else if current != ca {
		next = ca
	}
	if next == current {
		next = ""
	}
	return current, next
}

// OperatorCertificate reports whether the server serves the operator's
// certificate (--tls-cert) rather than one of its server CA.
func (a *Authority) OperatorCertificate() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.operatorPin != ""
}
