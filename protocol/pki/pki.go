package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ALPN protocol names on the server's port.
const (
	ALPNTunnel  = "pamd-tunnel/1"
	ALPNGateway = "pamd-gateway/1"
	ALPNHTTP    = "http/1.1"
)

// Fingerprint returns "SHA256:<hex>" of the certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// NormalizeFingerprint accepts the hex with or without the SHA256: prefix
// and with or without colons, and returns the canonical form.
func NormalizeFingerprint(fp string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(fp))
	h = strings.TrimPrefix(h, "sha256:")
	h = strings.ReplaceAll(h, ":", "")
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("pki: %q is not a SHA-256 fingerprint (64 hex digits)", fp)
	}
	return "SHA256:" + h, nil
}

// The identities pamd writes into its certificates as URI SANs. Only the
// server's own certificate carries ServerIdentity; every client-facing
// resource certificate (whose key lives on gateways) carries a URI starting
// with ResourceIdentityPrefix.
const (
	ServerIdentity         = "urn:pamd:server"
	ResourceIdentityPrefix = "urn:pamd:resource:"
)

// ResourceIdentity is the URI SAN of the client-facing certificate of the
// resource with that id.
func ResourceIdentity(id string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: "pamd:resource:" + id}
}

// serverIdentity is ServerIdentity as a URL.
func serverIdentity() *url.URL { return &url.URL{Scheme: "urn", Opaque: "pamd:server"} }

// ErrNotServer means the chain verifies but its leaf is not the pamd
// server's own certificate (for example a resource certificate, whose key a
// gateway holds).
var ErrNotServer = errors.New("pki: the certificate is not the pamd server's own (no " + ServerIdentity + " identity)")

// ErrPinMismatch means no certificate in the server's chain has the pinned
// fingerprint.
var ErrPinMismatch = errors.New("pki: the server's certificate chain does not match the pinned CA fingerprint")

// VerifyPinned returns a tls.Config.VerifyPeerCertificate function that
// accepts a server chain when one certificate in it has the fingerprint and
// the leaf verifies against that certificate for server authentication. The
// host name is not checked: the pin, not the name, identifies the server.
//
// A leaf carrying a resource identity is always refused. When the pinned
// certificate is one pamd made (organisation "pamd", the internal server
// CA), the leaf must also carry ServerIdentity: certificates that CA signed
// before it signed only the server's (resource certificates, whose keys
// travelled to gateways) lack it. An operator's own CA (--tls-cert) never
// signed anything pamd hands out, so its leaves need no marker.
func VerifyPinned(fingerprint string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("pki: server sent no certificate")
		}
		var root *x509.Certificate
		for _, der := range raw {
			if Fingerprint(der) == fingerprint {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("pki: parse pinned certificate: %w", err)
				}
				root = c
			}
		}
		if root == nil {
			return fmt.Errorf("%w (want %s)", ErrPinMismatch, fingerprint)
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("pki: parse server certificate: %w", err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(root)
		inter := x509.NewCertPool()
		for _, der := range raw[1:] {
			if c, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(c)
			}
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return fmt.Errorf("pki: server certificate does not verify against the pinned CA: %w", err)
		}
		return checkServerIdentity(leaf, root)
	}
}

// VerifyPinnedAny is VerifyPinned for several pins (during a CA rotation,
// the current CA and the next): the chain is accepted when it verifies
// against any of them. Empty fingerprints are skipped. When none matches,
// the error names every pin.
func VerifyPinnedAny(fingerprints ...string) func([][]byte, [][]*x509.Certificate) error {
	var pins []string
	for _, fp := range fingerprints {
		if fp != "" && !slices.Contains(pins, fp) {
			pins = append(pins, fp)
		}
	}
	switch len(pins) {
	case 0:
		return VerifyPinned("") // matches nothing
	case 1:
		return VerifyPinned(pins[0])
	}
	return func(raw [][]byte, chains [][]*x509.Certificate) error {
		var first error
		for _, fp := range pins {
			err := VerifyPinned(fp)(raw, chains)
			if err == nil {
				return nil
			}
			if first == nil || !errors.Is(err, ErrPinMismatch) && errors.Is(first, ErrPinMismatch) {
				first = err
			}
		}
		if errors.Is(first, ErrPinMismatch) {
			return fmt.Errorf("%w (want %s)", ErrPinMismatch, strings.Join(pins, " or "))
		}
		return first
	}
}

// checkServerIdentity applies VerifyPinned's identity rule to a leaf that
// verified against root.
func checkServerIdentity(leaf, root *x509.Certificate) error {
	server := false
	for _, u := range leaf.URIs {
		switch s := u.String(); {
		case strings.HasPrefix(s, ResourceIdentityPrefix):
			return fmt.Errorf("%w: it is the resource certificate %s", ErrNotServer, s)
		case s == ServerIdentity:
			server = true
		}
	}
	if !server && slices.Contains(root.Subject.Organization, "pamd") {
		return ErrNotServer
	}
	return nil
}

// PinnedClientConfig is a TLS client configuration trusting only the pinned
// CA, offering the given ALPN protocol.
// Further fingerprints (a CA rotation's next CA) are pinned too: a chain
// matching any of them is accepted.
func PinnedClientConfig(fingerprint, alpn string, more ...string) *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS12,
		InsecureSkipVerify:    true, // replaced by VerifyPeerCertificate: the pin, checked below
		VerifyPeerCertificate: VerifyPinnedAny(append([]string{fingerprint}, more...)...),
		NextProtos:            []string{alpn},
	}
}

// NewKey returns a new ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return k, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

// NewCA creates a self-signed CA certificate.
func NewCA(name string, key crypto.Signer, validity time.Duration) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"pamd"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA: %w", err)
	}
	return der, nil
}

// Leaf describes a certificate to issue.
type Leaf struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	URIs       []*url.URL
	Usage      x509.ExtKeyUsage
	Validity   time.Duration
	// Server marks the certificate as the pamd server's own (ServerIdentity).
	// Only the server's certificate, from the server CA, may set it.
	Server bool
}

// Issue signs a certificate for pub under the CA.
func Issue(ca *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, l Leaf) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: []string{"pamd"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(l.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{l.Usage},
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
		URIs:         l.URIs,
	}
	for _, u := range l.URIs {
		if u.String() == ServerIdentity {
			return nil, fmt.Errorf("pki: issue %s: the server identity is set with Leaf.Server, never as a URI", l.CommonName)
		}
	}
	if l.Server {
		tmpl.URIs = append(slices.Clone(l.URIs), serverIdentity())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: issue %s: %w", l.CommonName, err)
	}
	return der, nil
}

// EncodeCert returns PEM for a DER certificate.
func EncodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// EncodeKey returns PKCS#8 PEM for a private key.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// DecodeCert parses the first CERTIFICATE block of PEM.
func DecodeCert(p []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("pki: no CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// DecodeKey parses a PKCS#8, EC or PKCS#1 private key in PEM.
func DecodeKey(p []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("pki: no PEM block for the key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("pki: unsupported private key format")
}

// NewCSR returns a PEM certificate request for key with the given name.
func NewCSR(name string, key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR parses and checks the signature of a PEM certificate request.
func ParseCSR(p []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("pki: no CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: CSR signature: %w", err)
	}
	return csr, nil
}
