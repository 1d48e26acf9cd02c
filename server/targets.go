package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// What the kinds keep per resource on the server (kind.Env): SSH keys (a
// user CA and the host key pamd shows clients), whose private halves never
// leave the server, and the certificate gateways show SQL clients; and the
// probes the kinds send gateways. The HTTP handlers of the kinds' extra
// abilities (kind.Pinner, kind.UserCA) are here too.

// resourceKey returns the named per-resource key, creating it on first use.
func (s *Server) resourceKey(use, resourceID string) (ssh.Signer, string, error) {
	name := use + "/" + resourceID
	var pemText string
	err := s.st.Update(func(tx *store.Tx) error {
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

// probe asks a gateway to reach a target as d describes.
func (s *Server) probe(ctx context.Context, gateway string, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	var res tunnel.ProbeResult
	if err := s.ask(ctx, gateway, tunnel.KindProbe, d, 30*time.Second, &res); err != nil {
		return nil, err
	}
	if res.Error != "" {
		return &res, errors.New(res.Error)
	}
	return &res, nil
}

// ask opens a stream of the given kind to a gateway and decodes the one
// message it answers with into answer. It waits at most timeout, and stops
// waiting when ctx ends.
func (s *Server) ask(ctx context.Context, gateway string, kind tunnel.Kind, body any, timeout time.Duration, answer any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gateway %s: %s not sent: %w", gateway, kind, context.Cause(ctx))
	}
	st, err := s.hub.open(gateway)
	if err != nil {
		return err
	}
	defer st.Close()
	hdr, err := tunnel.NewHeader(kind, body)
	if err != nil {
		return err
	}
	st.SetDeadline(time.Now().Add(timeout))
	defer cutOnDone(ctx, st)()
	if _, err := hdr.WriteTo(st); err != nil {
		return err
	}
	reply, err := tunnel.ReadReply(st)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("gateway %s did not answer the %s: %w", gateway, kind, err)
	}
	if err := reply.Err(); err != nil {
		return err
	}
	msg, err := tunnel.ReadMessage(st)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	if err := json.Unmarshal(msg.Detail, answer); err != nil {
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	return nil
}

func (s *Server) handleTrustHostKey(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	var res *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	k, _ := s.kinds.of(res.Type)
	p, ok := k.(kind.Pinner)
	if !ok {
		return httpError(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	old := p.Fingerprint(res)
	fp, err := p.Pin(r.Context(), res)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutResource(res); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "resource.trust_host_key", res.Name, "success", c.source, "pinned "+fp+", was "+old)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.resourceView(res))
	return nil
}

// userCAOf finds the resource a request's path names by id, and its user CA.
func (s *Server) userCAOf(r *http.Request) (*store.Resource, kind.UserCA, error) {
	var res *store.Resource
	err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.Resource(r.PathValue("id")); return })
	if err != nil {
		return nil, nil, httpError(http.StatusNotFound, "no resource with id %q", r.PathValue("id"))
	}
	k, _ := s.kinds.of(res.Type)
	ca, ok := k.(kind.UserCA)
	if !ok {
		return nil, nil, httpError(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	return res, ca, nil
}

func (s *Server) handleSSHCAPublicKey(w http.ResponseWriter, r *http.Request) error {
	res, ca, err := s.userCAOf(r)
	if err != nil {
		return err
	}
	line, err := ca.CALine(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, line)
	return nil
}

func (s *Server) handleSSHCASetup(w http.ResponseWriter, r *http.Request) error {
	res, ca, err := s.userCAOf(r)
	if err != nil {
		return err
	}
	script, err := ca.SetupScript(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	fmt.Fprint(w, script)
	return nil
}

// The certificate SQL Server clients asking for encryption see is for the
// resource and signed by the resource CA (kept as a secret, made on first
// use). Its key goes to every gateway, so it never comes from the server
// CA: one made by the server CA before the resource CA existed is replaced
// on first use.

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
