package kind

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// Kind is one resource type on the server. Every method that may fail
// returns an *api.Error (Errorf) for what the user got wrong.
type Kind interface {
	// Schema describes the type for the console: its name, label and the
	// fields of its resources and accounts.
	Schema() api.Kind
	// Records says whether the gateway records what connections do.
	Records() bool
	// Defaults fills in what a new resource may leave out (its port).
	Defaults(req *api.Resource)
	// Create checks a new resource's settings (opts, without the password
	// policy), stores them on res in their stored form, prepares what the
	// type keeps per resource, and adds to out's audit detail and warnings.
	Create(ctx context.Context, res *store.Resource, opts map[string]string, out *Outcome) error
	// Update applies an update's address and settings to res; moved says
	// the gateway changed. It notes each change in out.Changed.
	Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, moved bool, out *Outcome) error
	// CheckAccount checks (and normalises) an account's settings before
	// they are stored, and where the type can, that it logs in. update
	// says the account exists and an update changed it.
	CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error
	// View adds what the type shows of a resource.
	View(res *store.Resource, v *api.Resource)
	// Descriptor fills in the descriptor's part for the type: how the
	// gateway reaches res and logs in as acct. sess bounds credentials
	// made for the connection.
	Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, sess *store.Session) error
	// Grant fills in what a session's client needs (host keys, CAs) and
	// the lines pamd connect prints.
	Grant(res *store.Resource, acct *store.Account, g *api.SessionGrant) error
	// Rotation says how the account's credential rotates, or why it cannot.
	Rotation(a *store.Account) (Rotation, string)
	// Test checks through the gateway that res can be used, and each
	// account where the type can tell.
	Test(ctx context.Context, res *store.Resource, accts []*store.Account) ([]api.ResourceCheck, error)
	// Summary is one line for a record of a session on this type ("" for
	// terminal data, which is replayed instead).
	Summary(r *tunnel.Record) string
	// FailureAction is the audit action for a connection whose target
	// failed for reason, or "" for connection.target_failed.
	FailureAction(reason tunnel.Reason) string
}

// Rotation is how an account's credential rotates.
type Rotation int

const (
	// RotateNone: the account has no stored credential to rotate.
	RotateNone Rotation = iota
	// RotatePassword: a new password from the resource's policy.
	RotatePassword
	// RotateKey: a new SSH key pair.
	RotateKey
)

// Pinner is a kind whose targets' identity is pinned (an SSH host key).
type Pinner interface {
	// Pin fetches the target's identity through the gateway and stores it
	// on res (not saved); it returns the fingerprint pinned.
	Pin(ctx context.Context, res *store.Resource) (string, error)
	// Fingerprint is what res has pinned.
	Fingerprint(res *store.Resource) string
}

// UserCA is a kind with a user CA per resource that targets trust.
type UserCA interface {
	// CALine is the CA's public key (authorized_keys form, named for res).
	CALine(res *store.Resource) (string, error)
	// SetupScript installs the CA on a target.
	SetupScript(res *store.Resource) (string, error)
}

// Env is what kinds use of the server.
type Env interface {
	// Probe asks a gateway serving res (its gateway, or one of its
	// group's) to reach a target as d describes, waiting for its answer
	// until ctx ends.
	Probe(ctx context.Context, res *store.Resource, d tunnel.Descriptor) (*tunnel.ProbeResult, error)
	// ResourceKey returns the per-resource SSH key of the given use
	// ("ssh-ca", "ssh-hostkey"), made on first use, and its PEM.
	ResourceKey(use, resourceID string) (ssh.Signer, string, error)
	// NextResourceKey is the next key of that use while it is rotated
	// (pamd ca rotate --type ssh), trusted beside the current one; nil
	// otherwise.
	NextResourceKey(use, resourceID string) (ssh.Signer, error)
	// ResourceCertificate returns the certificate chain and key (PEM) the
	// gateways show clients of res, signed by the resource CA, made on
	// first use.
	ResourceCertificate(res *store.Resource) (string, string, error)
	// ResourceCA is the resource CA's certificate (PEM).
	ResourceCA() string
}

// Outcome collects what creating or updating a resource says: its audit
// detail (create) or changes (update), and warnings for the admin.
type Outcome struct {
	Detail   string
	Changed  []string
	Warnings []string
}

// Errorf is an API error with an HTTP status.
func Errorf(status int, format string, args ...any) *api.Error {
	return &api.Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is Errorf with 400.
func BadRequest(format string, args ...any) *api.Error {
	return Errorf(http.StatusBadRequest, format, args...)
}

type noLoginCheck struct{}

// WithoutLoginCheck marks ctx so that CheckAccount stores an account
// without logging in to the target with it (pamd accounts add
// --no-login-check).
func WithoutLoginCheck(ctx context.Context) context.Context {
	return context.WithValue(ctx, noLoginCheck{}, true)
}

// LoginCheck says whether CheckAccount under ctx logs in with the account
// (the default) before it is stored.
func LoginCheck(ctx context.Context) bool { return ctx.Value(noLoginCheck{}) == nil }

// LoginFailed is CheckAccount's refusal of an account that did not log in
// to res: the target's reason, and how to store it anyway.
func LoginFailed(a *store.Account, res *store.Resource, err error) *api.Error {
	return BadRequest("account %s cannot log in to %s: %v (fix the credential, or add --no-login-check to store it unchecked)", a.Name, res.Name, err)
}

type notesKey struct{}

// WithNotes gives ctx a place for what CheckAccount tells the admin about
// an account it stores (that it was not logged in with, and why), and
// returns the list it fills.
func WithNotes(ctx context.Context) (context.Context, *[]string) {
	notes := new([]string)
	return context.WithValue(ctx, notesKey{}, notes), notes
}

// Note adds a note for the admin under ctx (dropped without WithNotes).
func Note(ctx context.Context, format string, args ...any) {
	if notes, ok := ctx.Value(notesKey{}).(*[]string); ok {
		*notes = append(*notes, fmt.Sprintf(format, args...))
	}
}

// Common carries the login every kind with accounts fills in.
func Common(acct *store.Account) tunnel.Login {
	return tunnel.Login{Username: acct.Username, Password: acct.Password}
}

// Via names what reaches res, for messages: "gateway NAME" or "gateway
// group NAME".
func Via(res *store.Resource) string {
	if res.GatewayGroup != "" {
		return "gateway group " + res.GatewayGroup
	}
	return "gateway " + res.Gateway
}

// CheckHost checks a resource's host as the gateway sees it.
func CheckHost(host string) error {
	if host == "" || strings.ContainsAny(host, " /") {
		return BadRequest("--host: give the target's host name or IP address as the gateway sees it")
	}
	return nil
}

// CheckPort checks a TCP port.
func CheckPort(port int) error {
	if port < 1 || port > 65535 {
		return BadRequest("--port: want 1 to 65535")
	}
	return nil
}

// UpdateAddress applies an update's host and port to res, noting each
// change; it reports whether the address moved.
func UpdateAddress(res *store.Resource, u *api.ResourceUpdate, out *Outcome) (bool, error) {
	moved := false
	if u.Host != nil && *u.Host != res.Host {
		if err := CheckHost(*u.Host); err != nil {
			return false, err
		}
		res.Host, moved = *u.Host, true
		out.Changed = append(out.Changed, "host "+res.Host)
	}
	if u.Port != nil && *u.Port != res.Port {
		if err := CheckPort(*u.Port); err != nil {
			return false, err
		}
		res.Port, moved = *u.Port, true
		out.Changed = append(out.Changed, fmt.Sprintf("port %d", res.Port))
	}
	return moved, nil
}

// MergeOptions returns a resource's options with an update's applied, and
// notes each change (a CA certificate only as replaced: it is long).
func MergeOptions(current, update map[string]string, changed *[]string) map[string]string {
	merged := map[string]string{}
	for k, v := range current {
		merged[k] = v
	}
	for k, v := range update {
		if merged[k] == v {
			continue
		}
		merged[k] = v
		if k == "tls_ca" {
			*changed = append(*changed, "tls_ca replaced")
		} else {
			*changed = append(*changed, k+" "+v)
		}
	}
	return merged
}

// TLS is how the gateway speaks TLS to a database target, as the options
// tls, tls_reject_unauthorized and tls_ca store it.
type TLS struct {
	Enabled bool   // tls: "true" (default) or "false"
	Verify  bool   // tls_reject_unauthorized: "true" (default) or "false"
	CA      string // tls_ca: a CA certificate (PEM) to verify the server with
}

// ParseTLS reads and checks the TLS options and returns warnings about
// weakened settings, naming server.
func ParseTLS(o map[string]string, server string) (TLS, []string, error) {
	t := TLS{CA: o["tls_ca"]}
	for _, opt := range []struct {
		k   string
		dst *bool
	}{{"tls", &t.Enabled}, {"tls_reject_unauthorized", &t.Verify}} {
		k, dst := opt.k, opt.dst
		switch o[k] {
		case "", "true":
			*dst = true
		case "false":
		default:
			return t, nil, BadRequest("--%s: want true or false", strings.ReplaceAll(k, "_", "-"))
		}
	}
	if t.CA != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(t.CA)) {
		return t, nil, BadRequest("--tls-ca-file: no PEM certificate in it")
	}
	switch {
	case !t.Enabled:
		return t, []string{"TLS to " + server + " is off: credentials and data cross the private network in the clear"}, nil
	case !t.Verify:
		return t, []string{"TLS certificate verification is off: the gateway cannot tell the real server from an impostor"}, nil
	}
	return t, nil, nil
}

// StoredTLS reads the TLS options as stored (already checked).
func StoredTLS(o map[string]string) TLS {
	return TLS{Enabled: o["tls"] != "false", Verify: o["tls_reject_unauthorized"] != "false", CA: o["tls_ca"]}
}

// Put stores the settings in o.
func (t TLS) Put(o map[string]string) {
	o["tls"], o["tls_reject_unauthorized"] = fmt.Sprint(t.Enabled), fmt.Sprint(t.Verify)
	if t.CA != "" {
		o["tls_ca"] = t.CA
	}
}

// Target is the settings in the descriptor's form.
func (t TLS) Target() tunnel.TargetTLS {
	return tunnel.TargetTLS{TLS: t.Enabled, TLSRejectUnauthorized: t.Verify, TLSCA: t.CA}
}

// TLSFields are the console's fields for the TLS options.
func TLSFields() []api.Field {
	return []api.Field{
		{Name: "tls", Label: "TLS", Type: api.FieldBool, Option: true, Default: "true", Edit: true},
		{Name: "tls_reject_unauthorized", Label: "Verify the server's certificate", Type: api.FieldBool, Option: true, Default: "true", Edit: true},
		{Name: "tls_ca", Label: "CA certificate (PEM, optional)", Type: api.FieldTextarea, Option: true, Flag: "tls-ca-file", Edit: true, Keep: true},
	}
}

// AddressFields are the console's fields for a host and port.
func AddressFields(defaultPort int) []api.Field {
	return []api.Field{
		{Name: "host", Label: "Host", Type: api.FieldText, Required: true, Placeholder: "as the gateway sees it", Edit: true},
		{Name: "port", Label: "Port", Type: api.FieldNumber, Placeholder: fmt.Sprint(defaultPort), Edit: true},
	}
}

// CommonSummary is the line for the records every kind may have.
func CommonSummary(r *tunnel.Record) string {
	switch r.Type {
	case "error":
		return "error: " + r.Data
	case "dropped":
		return "not recorded: " + r.Data
	}
	return ""
}

// TruncatedNote says what the gateway cut from a long text (tunnel.Cut).
func TruncatedNote(r *tunnel.Record) string {
	t := r.Truncated
	switch {
	case t == nil:
		return ""
	case t.Unread:
		return fmt.Sprintf("  [truncated: request of %d bytes, sha256 %s; its end was not read]", t.Length, t.SHA256)
	case t.Field != "":
		return fmt.Sprintf("  [truncated: %s of %d bytes, sha256 %s; head and tail kept]", t.Field, t.Length, t.SHA256)
	}
	return fmt.Sprintf("  [truncated: %d long values cut, each with its length and sha256]", t.Values)
}

// HeadTail shortens s to about n characters keeping its start and its end:
// what a padded statement ends with is what matters.
func HeadTail(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n*3/5]) + " … " + string(r[len(r)-n*2/5:])
}

// NewEd25519PEM makes an Ed25519 key: its OpenSSH PEM and a signer.
func NewEd25519PEM() (string, ssh.Signer, error) {
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
