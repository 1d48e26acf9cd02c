package ca

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// What the kinds keep per resource on the server (kind.Env): SSH keys (a
// user CA and the host key pamd shows clients), whose private halves never
// leave the server, and the certificate gateways show SQL clients.

// ResourceKey returns the named per-resource key, creating it on first use.
func (a *Authority) ResourceKey(use, resourceID string) (ssh.Signer, string, error) {
	name := use + "/" + resourceID
	var pemText string
	err := a.st.Update(func(tx *store.Tx) error {
		b, err := tx.Secret(name)
		if err == nil {
			pemText = string(b)
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		p, _, err := kind.NewEd25519PEM()
		if err != nil {
			return err
		}
		pemText = p
		return tx.PutSecret(name, []byte(p))
	})
	if err != nil {
		return nil, "", fmt.Errorf("ssh %s for resource: %w", use, err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(pemText))
	return signer, pemText, err
}

// The certificate SQL Server clients asking for encryption see is for the
// resource and signed by the resource CA (kept as a secret, made on first
// use). Its key goes to every gateway, so it never comes from the server
// CA: one made by the server CA before the resource CA existed is replaced
// on first use.

// ResourceCertificate returns the certificate (chain, PEM) and key pamd shows
// SQL Server clients for res, making it on first use.
func (a *Authority) ResourceCertificate(res *store.Resource) (string, string, error) {
	name := "mssql-tls/" + res.ID
	var out []byte
	// Every connection reads it; only the first use writes.
	err := a.st.View(func(tx *store.Tx) (err error) { out, err = tx.Secret(name); return err })
	if err == nil && !a.fromResourceCA(out) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		err = a.st.Update(func(tx *store.Tx) error { return a.newMSSQLCertificate(tx, res, name, &out) })
	}
	if err != nil {
		return "", "", fmt.Errorf("certificate for resource %s: %w", res.Name, err)
	}
	cert, key, ok := strings.Cut(string(out), "-----BEGIN PRIVATE KEY-----")
	if !ok {
		return "", "", fmt.Errorf("certificate for resource %s: stored secret has no key", res.Name)
	}
	return cert, "-----BEGIN PRIVATE KEY-----" + key, nil
}

// fromResourceCA reports whether a stored certificate secret (chain and key,
// PEM) was signed by the resource CA. The server wrote every such secret,
// so the authority key id tells, without a signature check per connection.
func (a *Authority) fromResourceCA(secret []byte) bool {
	c, err := pki.DecodeCert(secret)
	return err == nil && len(c.AuthorityKeyId) > 0 && bytes.Equal(c.AuthorityKeyId, a.pair(TypeResource).cert.SubjectKeyId)
}

// newMSSQLCertificate issues and stores the certificate (chain and key, PEM)
// unless a concurrent first use stored one already.
func (a *Authority) newMSSQLCertificate(tx *store.Tx, res *store.Resource, name string, out *[]byte) error {
	if b, err := tx.Secret(name); err == nil && a.fromResourceCA(b) {
		*out = b
		return nil
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	rca := a.pair(TypeResource)
	der, err := pki.Issue(rca.cert, rca.key, key.Public(), pki.Leaf{
		CommonName: "pamd " + res.Name, DNSNames: []string{"localhost"},
		IPs:   []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		URIs:  []*url.URL{pki.ResourceIdentity(res.ID)},
		Usage: x509.ExtKeyUsageServerAuth, Validity: 5 * 365 * 24 * time.Hour,
	})
	if err != nil {
		return err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	*out = append(append(pki.EncodeCert(der), rca.certPEM...), keyPEM...)
	return tx.PutSecret(name, *out)
}
