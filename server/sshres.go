package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

// SSH resources: the target's host key is pinned when the resource is made
// (the gateway fetches it with a probe) and checked by the gateway on every
// connection. pamd shows clients a host key of its own per resource, and
// each resource has its own user CA, whose key never leaves the server.

func newEd25519PEM() (string, ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	return string(pem.EncodeToMemory(block)), signer, err
}

// resourceKey returns the named per-resource key, creating it on first use.
func (s *Server) resourceKey(kind, resourceID string) (ssh.Signer, string, error) {
	name := kind + "/" + resourceID
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
		p, _, err := newEd25519PEM()
		if err != nil {
			return err
		}
		pemText = p
		return tx.PutSecret(name, []byte(p))
	})
	if err != nil {
		return nil, "", fmt.Errorf("ssh %s for resource: %w", kind, err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(pemText))
	return signer, pemText, err
}

func (s *Server) sshCA(resourceID string) (ssh.Signer, error) {
	signer, _, err := s.resourceKey("ssh-ca", resourceID)
	return signer, err
}

func (s *Server) sshHostKey(resourceID string) (ssh.Signer, string, error) {
	return s.resourceKey("ssh-hostkey", resourceID)
}

// probe asks a gateway to reach a target as d describes.
func (s *Server) probe(gateway string, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	var res tunnel.ProbeResult
	if err := s.ask(gateway, tunnel.KindProbe, d, 30*time.Second, &res); err != nil {
		return nil, err
	}
	if res.Error != "" {
		return &res, errors.New(res.Error)
	}
	return &res, nil
}

// ask opens a stream of the given kind to a gateway and decodes the one
// message it answers with into answer.
func (s *Server) ask(gateway string, kind tunnel.Kind, body any, timeout time.Duration, answer any) error {
	st, err := s.hub.open(gateway)
	if err != nil {
		return err
	}
	defer st.Close()
	hdr, err := tunnel.NewHeader(kind, body)
	if err != nil {
		return err
	}
	if _, err := hdr.WriteTo(st); err != nil {
		return err
	}
	st.SetReadDeadline(time.Now().Add(timeout))
	reply, err := tunnel.ReadReply(st)
	if err != nil {
		return fmt.Errorf("gateway %s did not answer the %s: %w", gateway, kind, err)
	}
	if err := reply.Err(); err != nil {
		return err
	}
	msg, err := tunnel.ReadMessage(st)
	if err != nil {
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	if err := json.Unmarshal(msg.Detail, answer); err != nil {
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	return nil
}

// probeHostKey asks the resource's gateway for the target's SSH host key.
func (s *Server) probeHostKey(gateway, host string, port int) (ssh.PublicKey, error) {
	res, err := s.probe(gateway, tunnel.Descriptor{Protocol: "ssh", Target: net.JoinHostPort(host, strconv.Itoa(port))})
	if err != nil {
		return nil, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(res.HostKey))
	if err != nil {
		return nil, fmt.Errorf("gateway %s: probe answer: host key: %w", gateway, err)
	}
	return key, nil
}

// pinHostKey probes and stores the target's host key on res (not saved).
func (s *Server) pinHostKey(res *store.Resource) (ssh.PublicKey, error) {
	key, err := s.probeHostKey(res.Gateway, res.Host, res.Port)
	if err != nil {
		return nil, httpError(http.StatusBadGateway, "cannot pin the SSH host key of %s:%d through gateway %s: %v", res.Host, res.Port, res.Gateway, err)
	}
	if res.Options == nil {
		res.Options = map[string]string{}
	}
	res.Options["host_key"] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return key, nil
}

func hostKeyFingerprint(res *store.Resource) string {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(res.Options["host_key"]))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(key)
}

func (s *Server) handleTrustHostKey(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	var res *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	if res.Type != "ssh" {
		return httpError(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	old := hostKeyFingerprint(res)
	if _, err := s.pinHostKey(res); err != nil {
		return err
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutResource(res); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "resource.trust_host_key", res.Name, "success", c.source, "pinned "+hostKeyFingerprint(res)+", was "+old)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resourceView(res))
	return nil
}

func (s *Server) sshResourceByID(r *http.Request) (*store.Resource, error) {
	var res *store.Resource
	err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.Resource(r.PathValue("id")); return })
	if err != nil {
		return nil, httpError(http.StatusNotFound, "no resource with id %q", r.PathValue("id"))
	}
	if res.Type != "ssh" {
		return nil, httpError(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	return res, nil
}

func (s *Server) caLine(res *store.Resource) (string, error) {
	ca, err := s.sshCA(res.ID)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))) + " pamd-ca@" + res.Name, nil
}

func (s *Server) handleSSHCAPublicKey(w http.ResponseWriter, r *http.Request) error {
	res, err := s.sshResourceByID(r)
	if err != nil {
		return err
	}
	line, err := s.caLine(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, line)
	return nil
}

func (s *Server) handleSSHCASetup(w http.ResponseWriter, r *http.Request) error {
	res, err := s.sshResourceByID(r)
	if err != nil {
		return err
	}
	line, err := s.caLine(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	fmt.Fprintf(w, caSetupScript, res.Name, line)
	return nil
}

// caSetupScript installs a resource's CA for sshd. It is idempotent, and
// every path can be moved by environment for hosts laid out differently.
const caSetupScript = `#!/usr/bin/env bash
# Trust SSH user certificates issued by pamd for resource %[1]s.
# Safe to run more than once. Run as root on the SSH server.
set -euo pipefail
CA_KEY='%[2]s'
CA_FILE=${PAMD_CA_FILE:-/etc/ssh/pamd_ca.pub}
SSHD_CONFIG=${SSHD_CONFIG:-/etc/ssh/sshd_config}
SSHD=${SSHD:-$(command -v sshd || echo /usr/sbin/sshd)}

printf '%%s\n' "$CA_KEY" > "$CA_FILE.tmp"
chmod 0644 "$CA_FILE.tmp"
mv "$CA_FILE.tmp" "$CA_FILE"
echo "pamd: wrote the CA public key to $CA_FILE"

configured=$(awk 'tolower($1) == "trustedusercakeys" { print $2; exit }' "$SSHD_CONFIG")
if [ -z "$configured" ]; then
  # First match wins in sshd_config, so the line goes to the top.
  tmp=$(mktemp)
  { echo "# Added by pamd: trust user certificates from the pamd CA"
    echo "TrustedUserCAKeys $CA_FILE"
    cat "$SSHD_CONFIG"; } > "$tmp"
  cat "$tmp" > "$SSHD_CONFIG"
  rm -f "$tmp"
  echo "pamd: added TrustedUserCAKeys $CA_FILE to $SSHD_CONFIG"
elif [ "$configured" = "$CA_FILE" ]; then
  echo "pamd: $SSHD_CONFIG already trusts $CA_FILE"
else
  echo "pamd: warning: $SSHD_CONFIG already trusts another CA file, $configured;" >&2
  echo "pamd: warning: add the pamd CA key to it (one key per line) for pamd certificates to work:" >&2
  echo "  $CA_KEY" >&2
fi

"$SSHD" -t -f "$SSHD_CONFIG"
echo "pamd: sshd accepts the configuration"

if [ -n "${SSHD_PID_FILE:-}" ]; then
  kill -HUP "$(cat "$SSHD_PID_FILE")"
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ssh 2>/dev/null; then
  systemctl reload ssh
elif command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet sshd 2>/dev/null; then
  systemctl reload sshd
elif [ -f /run/sshd.pid ]; then
  kill -HUP "$(cat /run/sshd.pid)"
else
  echo "pamd: reload sshd yourself to apply the change" >&2
  exit 0
fi
echo "pamd: sshd reloaded"
`

// sshDescriptor fills the SSH part of a connection's descriptor: the pinned
// target key, pamd's host key, and the credential, for certificate auth a
// key made now with a certificate valid until the session expires.
func (s *Server) sshDescriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, sess *store.Session) error {
	d.HostKey = res.Options["host_key"]
	_, hostPEM, err := s.sshHostKey(res.ID)
	if err != nil {
		return err
	}
	d.ServerHostKey = hostPEM
	d.Auth = acct.Auth
	switch acct.Auth {
	case "key":
		d.PrivateKey, d.Passphrase = acct.PrivateKey, acct.Passphrase
	case "certificate":
		ca, err := s.sshCA(res.ID)
		if err != nil {
			return err
		}
		keyPEM, key, err := newEd25519PEM()
		if err != nil {
			return err
		}
		cert := &ssh.Certificate{
			Key:             key.PublicKey(),
			CertType:        ssh.UserCert,
			KeyId:           fmt.Sprintf("pamd user=%s session=%s connection=%s", sess.UserName, sess.ID, d.ConnectionID),
			ValidPrincipals: []string{acct.Username},
			ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
			ValidBefore:     uint64(sess.ExpiresAt.Unix()),
			Permissions: ssh.Permissions{Extensions: map[string]string{
				"permit-pty": "", "permit-port-forwarding": "", "permit-agent-forwarding": "", "permit-user-rc": "",
			}},
		}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			return fmt.Errorf("sign certificate: %w", err)
		}
		d.PrivateKey, d.Certificate = keyPEM, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	}
	return nil
}

// validateSSHAccount checks an ssh account's credential before storing it.
func validateSSHAccount(a *store.Account) error {
	if a.Auth == "" {
		a.Auth = "password"
		if a.PrivateKey != "" {
			a.Auth = "key"
		}
	}
	if a.Username == "" {
		return httpError(http.StatusBadRequest, "--username: the account's login name on the SSH server")
	}
	switch a.Auth {
	case "password":
		if a.Password == "" {
			return httpError(http.StatusBadRequest, "password auth needs a password: --password-stdin")
		}
	case "key":
		if a.PrivateKey == "" {
			return httpError(http.StatusBadRequest, "key auth needs --private-key-file")
		}
		var err error
		if a.Passphrase != "" {
			_, err = ssh.ParsePrivateKeyWithPassphrase([]byte(a.PrivateKey), []byte(a.Passphrase))
		} else {
			_, err = ssh.ParsePrivateKey([]byte(a.PrivateKey))
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return httpError(http.StatusBadRequest, "the private key is passphrase-protected: add --passphrase-stdin")
		case errors.Is(err, x509.IncorrectPasswordError):
			return httpError(http.StatusBadRequest, "the passphrase does not open the private key")
		case err != nil:
			return httpError(http.StatusBadRequest, "the private key does not parse (want OpenSSH or PEM format)")
		}
	case "certificate":
		if a.Password != "" || a.PrivateKey != "" {
			return httpError(http.StatusBadRequest, "certificate auth stores no secret: drop the password or key")
		}
	default:
		return httpError(http.StatusBadRequest, "--auth %q: want password, key or certificate", a.Auth)
	}
	return nil
}

func sshFingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }
