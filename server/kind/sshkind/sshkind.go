package sshkind

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// DefaultPort is the port of a resource that names none.
const DefaultPort = 22

// Kind is the ssh kind.
type Kind struct{ env kind.Env }

// New returns the ssh kind.
func New(env kind.Env) *Kind { return &Kind{env: env} }

// options are an ssh resource's settings.
type options struct {
	HostKey string // host_key
}

func parse(o map[string]string) options { return options{HostKey: o["host_key"]} }

func (k *Kind) Schema() api.Kind {
	return api.Kind{
		Name: tunnel.ProtocolSSH, Label: "SSH server",
		ResourceFields: kind.AddressFields(DefaultPort),
		AccountFields: []api.Field{
			{Name: "username", Label: "User name", Type: api.FieldText, Required: true, Edit: true},
			{Name: "auth", Label: "Auth", Type: api.FieldSelect, Choices: []string{"password", "key", "certificate"}, Default: "password", Edit: true},
			{Name: "password", Label: "Password", Type: api.FieldSecret, Edit: true, Keep: true, ShowIf: &api.Condition{Field: "auth", Values: []string{"password"}}},
			{Name: "private_key", Label: "Private key (OpenSSH or PEM)", Type: api.FieldTextarea, Edit: true, Keep: true, ShowIf: &api.Condition{Field: "auth", Values: []string{"key"}}},
			{Name: "passphrase", Label: "Passphrase", Type: api.FieldSecret, Edit: true, Keep: true, ShowIf: &api.Condition{Field: "auth", Values: []string{"key"}}},
		},
		Rotates:       true,
		AccessCommand: "pamd ssh",
		AccessNote:    "For OpenSSH, scp, sftp or rsync use: pamd connect {target} — it prints the ssh lines to paste.",
		PinsHostKey:   true, UserCA: true,
		EditNote: "A new host or port re-pins the host key from what the target presents now.",
	}
}

func (k *Kind) Records() bool { return true }

func (k *Kind) Defaults(req *api.Resource) {
	if req.Port == 0 {
		req.Port = DefaultPort
	}
}

func (k *Kind) Create(ctx context.Context, res *store.Resource, _ map[string]string, out *kind.Outcome) error {
	fp, err := k.Pin(ctx, res)
	if err != nil {
		return err
	}
	if _, _, err := k.env.ResourceKey("ssh-hostkey", res.ID); err != nil {
		return err
	}
	out.Detail += "; pinned host key " + fp
	return nil
}

func (k *Kind) Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, moved bool, out *kind.Outcome) error {
	if len(u.Options) > 0 {
		return kind.BadRequest("%s resources have no options", res.Type)
	}
	addrMoved, err := kind.UpdateAddress(res, u, out)
	if err != nil {
		return err
	}
	if moved || addrMoved {
		old := k.Fingerprint(res)
		if _, err := k.Pin(ctx, res); err != nil {
			return err
		}
		if fp := k.Fingerprint(res); fp != old {
			out.Changed = append(out.Changed, "host key re-pinned "+fp+" (was "+old+")")
		}
	}
	return nil
}

// CheckAccount checks an ssh account's credential before storing it; an
// update drops the secrets its auth does not use.
func (k *Kind) CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error {
	if update {
		if a.Auth == "certificate" {
			a.Password, a.PrivateKey, a.Passphrase = "", "", ""
		}
		if a.Auth == "key" {
			a.Password = ""
		}
	}
	if a.Auth == "" {
		a.Auth = "password"
		if a.PrivateKey != "" {
			a.Auth = "key"
		}
	}
	if a.Username == "" {
		return kind.BadRequest("--username: the account's login name on the SSH server")
	}
	switch a.Auth {
	case "password":
		if a.Password == "" {
			return kind.BadRequest("password auth needs a password: --password-stdin")
		}
	case "key":
		if a.PrivateKey == "" {
			return kind.BadRequest("key auth needs --private-key-file")
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
			return kind.BadRequest("the private key is passphrase-protected: add --passphrase-stdin")
		case errors.Is(err, x509.IncorrectPasswordError):
			return kind.BadRequest("the passphrase does not open the private key")
		case err != nil:
			return kind.BadRequest("the private key does not parse (want OpenSSH or PEM format)")
		}
	case "certificate":
		if a.Password != "" || a.PrivateKey != "" {
			return kind.BadRequest("certificate auth stores no secret: drop the password or key")
		}
		// Not logged in with here: the target trusts the resource's CA
		// only once its setup script ran, often after the account is
		// added. pamd resources test logs in with it.
		return nil
	default:
		return kind.BadRequest("--auth %q: want password, key or certificate", a.Auth)
	}
	if !kind.LoginCheck(ctx) {
		return nil
	}
	if err := k.login(ctx, res, a); err != nil {
		return kind.BadRequest("account %s cannot log in to %s: %v (fix the credential, or add --no-login-check to store it unchecked)", a.Name, res.Name, err)
	}
	return nil
}

// login logs in to res's target as acct through its gateway, as a session
// would (pinned host key, the credential; for certificate auth one made
// now, valid for a minute).
func (k *Kind) login(ctx context.Context, res *store.Resource, acct *store.Account) error {
	d := tunnel.Descriptor{Protocol: tunnel.ProtocolSSH, Resource: res.Name, Account: acct.Name, ConnectionID: "login-check",
		Target: net.JoinHostPort(res.Host, strconv.Itoa(res.Port))}
	check := &store.Session{ID: "login-check", UserName: "pamd", ExpiresAt: time.Now().Add(time.Minute)}
	if err := k.Descriptor(&d, res, acct, check); err != nil {
		return err
	}
	r, err := k.env.Probe(ctx, res, d)
	if err != nil {
		return err
	}
	if r.Version == "" {
		return fmt.Errorf("%s is too old to log in for a check (upgrade it)", kind.Via(res))
	}
	return nil
}

func (k *Kind) View(res *store.Resource, v *api.Resource) {
	v.HostKeyFingerprint = k.Fingerprint(res)
	v.Address = net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
}

// Descriptor fills the ssh part: the pinned target key, pamd's host key,
// and the credential, for certificate auth a key made now with a
// certificate valid until the session expires.
func (k *Kind) Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, sess *store.Session) error {
	_, hostPEM, err := k.env.ResourceKey("ssh-hostkey", res.ID)
	if err != nil {
		return err
	}
	p := &tunnel.SSHTarget{Login: kind.Common(acct), Auth: acct.Auth, HostKey: parse(res.Options).HostKey, ServerHostKey: hostPEM}
	d.SSH = p
	switch acct.Auth {
	case "key":
		p.PrivateKey, p.Passphrase = acct.PrivateKey, acct.Passphrase
	case "certificate":
		ca, _, err := k.env.ResourceKey("ssh-ca", res.ID)
		if err != nil {
			return err
		}
		keyPEM, key, err := kind.NewEd25519PEM()
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
		p.PrivateKey, p.Certificate = keyPEM, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
	}
	return nil
}

// Grant gives the client pamd's host key for its known_hosts, and the
// OpenSSH lines to paste.
func (k *Kind) Grant(res *store.Resource, acct *store.Account, g *api.SessionGrant) error {
	host, _, err := k.env.ResourceKey("ssh-hostkey", res.ID)
	if err != nil {
		return err
	}
	g.SSHHostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(host.PublicKey())))
	const opts = "-o UserKnownHostsFile={known_hosts}"
	g.ClientLines = []string{
		"ssh -p {port} " + opts + " " + acct.Username + "@127.0.0.1",
		"scp -P {port} " + opts + " FILE " + acct.Username + "@127.0.0.1:PATH",
		"sftp -P {port} " + opts + " " + acct.Username + "@127.0.0.1",
	}
	g.ClientFields = map[string]string{"known_hosts": "{known_hosts}", "username": acct.Username}
	g.ClientCommands = [][]string{{"ssh", "-p", "{port}", "-o", "UserKnownHostsFile={known_hosts}", acct.Username + "@127.0.0.1"}}
	return nil
}

func (k *Kind) Rotation(a *store.Account) (kind.Rotation, string) {
	switch a.Auth {
	case "certificate":
		return kind.RotateNone, "account " + a.Name + " logs in with certificates pamd signs per connection: there is no stored credential to rotate"
	case "key":
		return kind.RotateKey, ""
	}
	return kind.RotatePassword, ""
}

func (k *Kind) Test(ctx context.Context, res *store.Resource, accts []*store.Account) ([]api.ResourceCheck, error) {
	key, err := k.probeHostKey(ctx, res)
	if err == nil {
		if fp := k.Fingerprint(res); fp != ssh.FingerprintSHA256(key) {
			err = kind.Errorf(http.StatusConflict, "host key mismatch: pinned %s, the target presents %s", fp, ssh.FingerprintSHA256(key))
		}
	}
	c := api.ResourceCheck{Check: "reach and match the pinned host key", OK: err == nil, Detail: "host key " + k.Fingerprint(res)}
	if err != nil {
		c.Detail = err.Error()
	}
	out := []api.ResourceCheck{c}
	for _, a := range accts {
		err := k.login(ctx, res, a)
		c := api.ResourceCheck{Check: "log in as account " + a.Name, OK: err == nil, Detail: "logged in as " + a.Username + " (" + a.Auth + ")"}
		if err != nil {
			c.Detail = err.Error()
		}
		out = append(out, c)
	}
	return out, nil
}

func (k *Kind) Summary(r *tunnel.Record) string {
	switch r.Type {
	case "pty":
		return fmt.Sprintf("terminal %s %dx%d", r.Term, r.Width, r.Height)
	case "r":
		return fmt.Sprintf("resize %dx%d", r.Width, r.Height)
	case "shell":
		return "shell"
	case "exec":
		return "exec " + r.Command
	case "subsystem":
		return "subsystem " + r.Command
	case "exit":
		if r.Status == nil {
			return "exit"
		}
		return fmt.Sprintf("exit status %d", *r.Status)
	case "file":
		return fmt.Sprintf("file %s %s (%d bytes)", r.Op, r.Path, r.Size)
	case "forward":
		return "port forward to " + r.Path
	}
	return kind.CommonSummary(r)
}

func (k *Kind) FailureAction(reason tunnel.Reason) string {
	if reason == tunnel.ReasonHostKeyMismatch {
		return "ssh.host_key_mismatch"
	}
	return ""
}

// probeHostKey asks the resource's gateway for the target's SSH host key.
func (k *Kind) probeHostKey(ctx context.Context, target *store.Resource) (ssh.PublicKey, error) {
	res, err := k.env.Probe(ctx, target, tunnel.Descriptor{Protocol: tunnel.ProtocolSSH, Target: net.JoinHostPort(target.Host, strconv.Itoa(target.Port))})
	if err != nil {
		return nil, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(res.HostKey))
	if err != nil {
		return nil, fmt.Errorf("%s: probe answer: host key: %w", kind.Via(target), err)
	}
	return key, nil
}

// Pin probes and stores the target's host key on res (not saved).
func (k *Kind) Pin(ctx context.Context, res *store.Resource) (string, error) {
	key, err := k.probeHostKey(ctx, res)
	if err != nil {
		return "", kind.Errorf(http.StatusBadGateway, "cannot pin the SSH host key of %s:%d through %s: %v", res.Host, res.Port, kind.Via(res), err)
	}
	if res.Options == nil {
		res.Options = map[string]string{}
	}
	res.Options["host_key"] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return ssh.FingerprintSHA256(key), nil
}

// Fingerprint is the SHA256 fingerprint of the pinned host key, or "".
func (k *Kind) Fingerprint(res *store.Resource) string {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(parse(res.Options).HostKey))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(key)
}

// CALine is the resource's user CA public key, named for the resource;
// while the CA is rotated, the next key's line follows (targets trust
// both until the rotation completes).
func (k *Kind) CALine(res *store.Resource) (string, error) {
	ca, _, err := k.env.ResourceKey("ssh-ca", res.ID)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))) + " pamd-ca@" + res.Name
	next, err := k.env.NextResourceKey("ssh-ca", res.ID)
	if err != nil {
		return "", err
	}
	if next != nil {
		line += "\n" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(next.PublicKey()))) + " pamd-ca-next@" + res.Name
	}
	return line, nil
}

// SetupScript installs the resource's CA for sshd.
func (k *Kind) SetupScript(res *store.Resource) (string, error) {
	line, err := k.CALine(res)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(caSetupScript, res.Name, line), nil
}
