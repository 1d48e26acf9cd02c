package server

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// SQL Server resources keep their settings in the resource's options:
//
//	database                 where clients land unless they name one
//	tls                      "true" (default) or "false": TLS to the server
//	tls_reject_unauthorized  "true" (default) or "false"
//	tls_ca                   a CA certificate (PEM) to verify the server with
//
// Clients that ask pamd for encryption see a certificate for the resource
// signed by the resource CA (kept as a secret, made on first use). Its key
// goes to every gateway, so it never comes from the server CA: one made by
// the server CA before the resource CA existed is replaced on first use.

func validateMSSQLResource(res *store.Resource, req *api.Resource) ([]string, error) {
	o := map[string]string{}
	for k, v := range req.Options {
		o[k] = v
	}
	warnings, err := tlsOptions(o, "SQL Server")
	if err != nil {
		return nil, err
	}
	res.Options = o
	return warnings, nil
}

// validateMSSQLAccount checks an account's login settings.
func validateMSSQLAccount(a *store.Account) error {
	if a.Auth == "" {
		a.Auth = "sql"
	}
	if a.Username == "" || a.Password == "" {
		return httpError(http.StatusBadRequest, "a SQL Server account needs --username and --password-stdin")
	}
	if a.PrivateKey != "" {
		return httpError(http.StatusBadRequest, "SQL Server accounts log in with a password, not a key")
	}
	switch a.Auth {
	case "sql":
		if a.Domain != "" || a.Realm != "" || a.SPN != "" || a.KDC != "" {
			return httpError(http.StatusBadRequest, "--domain, --realm, --spn and --kdc are for --auth ntlm or kerberos")
		}
	case "ntlm":
		if a.Domain == "" {
			return httpError(http.StatusBadRequest, "--auth ntlm needs --domain (the account's Windows domain)")
		}
		if a.Realm != "" || a.SPN != "" || a.KDC != "" {
			return httpError(http.StatusBadRequest, "--realm, --spn and --kdc are for --auth kerberos")
		}
	case "kerberos":
		switch {
		case a.Realm == "":
			return httpError(http.StatusBadRequest, "--auth kerberos needs --realm (for example EXAMPLE.COM)")
		case !strings.HasPrefix(a.SPN, "MSSQLSvc/"):
			return httpError(http.StatusBadRequest, "--spn: want the server's service principal, MSSQLSvc/HOST:PORT")
		case a.Domain != "":
			return httpError(http.StatusBadRequest, "--domain is for --auth ntlm; Kerberos uses --realm")
		}
		a.Realm = strings.ToUpper(a.Realm)
		if a.KDC != "" {
			if _, _, err := net.SplitHostPort(a.KDC); err != nil && strings.ContainsAny(a.KDC, "/ ") {
				return httpError(http.StatusBadRequest, "--kdc: want HOST or HOST:PORT")
			}
		}
	default:
		return httpError(http.StatusBadRequest, "--auth: want sql, ntlm or kerberos for SQL Server accounts")
	}
	return nil
}

func (s *Server) mssqlDescriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account) error {
	o := res.Options
	d.Database = o["database"]
	d.TLS = o["tls"] != "false"
	d.TLSRejectUnauthorized = o["tls_reject_unauthorized"] != "false"
	d.TLSCA = o["tls_ca"]
	d.Auth, d.Domain, d.Realm, d.SPN, d.KDC = acct.Auth, acct.Domain, acct.Realm, acct.SPN, acct.KDC
	cert, key, err := s.mssqlCertificate(res)
	d.ServerTLSCert, d.ServerTLSKey = cert, key
	return err
}

// mssqlCertificate returns the certificate (chain, PEM) and key pamd shows
// SQL Server clients for res, making it on first use.
func (s *Server) mssqlCertificate(res *store.Resource) (string, string, error) {
	name := "mssql-tls/" + res.ID
	var out []byte
	// Every connection reads it; only the first use writes.
	err := s.st.View(func(tx *store.Tx) (err error) { out, err = tx.Secret(name); return err })
	if err == nil && !s.fromResourceCA(out) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		err = s.st.Update(func(tx *store.Tx) error { return s.newMSSQLCertificate(tx, res, name, &out) })
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
func (s *Server) fromResourceCA(secret []byte) bool {
	c, err := pki.DecodeCert(secret)
	return err == nil && len(c.AuthorityKeyId) > 0 && bytes.Equal(c.AuthorityKeyId, s.ca.resource.cert.SubjectKeyId)
}

// newMSSQLCertificate issues and stores the certificate (chain and key, PEM)
// unless a concurrent first use stored one already.
func (s *Server) newMSSQLCertificate(tx *store.Tx, res *store.Resource, name string, out *[]byte) error {
	if b, err := tx.Secret(name); err == nil && s.fromResourceCA(b) {
		*out = b
		return nil
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	der, err := pki.Issue(s.ca.resource.cert, s.ca.resource.key, key.Public(), pki.Leaf{
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
	*out = append(append(pki.EncodeCert(der), s.ca.resource.certPEM...), keyPEM...)
	return tx.PutSecret(name, *out)
}
