package tunnel

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Access opens an access or control stream from pamd connect. Credential is
// the secret the server issued with the access session; it proves the stream
// belongs to that session.
type Access struct {
	SessionID  string `json:"session_id"`
	Credential string `json:"credential"`
}

// Hello is the first stream a gateway opens after connecting. Group is the
// gateway group it serves (--gateway-group), empty for none (and from
// gateways older than groups).
type Hello struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Group   string `json:"group,omitempty"`
}

// Protocol names, as resources' types and descriptors' Protocol carry them.
const (
	ProtocolTCP      = "tcp"
	ProtocolSSH      = "ssh"
	ProtocolMongo    = "mongodb"
	ProtocolMSSQL    = "mssql"
	ProtocolPostgres = "postgres"
)

// Descriptor tells a gateway everything it needs for one proxied connection.
// It travels only on the mutual-TLS leg and may hold credentials: never log it.
//
// The fields every protocol shares are at the top; what one protocol needs
// (its credentials among it) is in that protocol's part, and only the part
// of the descriptor's Protocol is set: a handler sees no other protocol's
// settings or credentials.
type Descriptor struct {
	SessionID    string    `json:"session_id"`
	ConnectionID string    `json:"connection_id,omitempty"`
	User         string    `json:"user"`
	Resource     string    `json:"resource"`
	Account      string    `json:"account,omitempty"`
	Protocol     string    `json:"protocol"`
	Target       string    `json:"target"` // host:port
	ExpiresAt    time.Time `json:"expires_at"`
	ClientAddr   string    `json:"client_addr,omitempty"`
	// Record asks the gateway to record the session's content.
	Record bool `json:"record,omitempty"`

	TCP      *TCPTarget      `json:"tcp,omitempty"`
	SSH      *SSHTarget      `json:"ssh,omitempty"`
	Mongo    *MongoTarget    `json:"mongodb,omitempty"`
	MSSQL    *MSSQLTarget    `json:"mssql,omitempty"`
	Postgres *PostgresTarget `json:"postgres,omitempty"`
}

// Login is an account's user name and password on its target.
type Login struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// TargetTLS is how the gateway speaks TLS to a database target: on or off,
// whether it verifies the server's certificate, and a CA (PEM) to verify with.
type TargetTLS struct {
	TLS                   bool   `json:"tls,omitempty"`
	TLSRejectUnauthorized bool   `json:"tls_reject_unauthorized,omitempty"`
	TLSCA                 string `json:"tls_ca,omitempty"`
}

// TCPTarget is the tcp part: raw bytes need nothing beyond Target.
type TCPTarget struct{}

// SSHTarget is the ssh part. Auth is password, key or certificate.
// PrivateKey is the account's key, or for certificate auth a key made for
// this connection, whose Certificate (authorized_keys form) the resource's
// CA signed. HostKey is the target's pinned host key (authorized_keys
// form); ServerHostKey is the private key pamd shows clients for this
// resource. A probe's ssh descriptor has no part: it only fetches the host key.
type SSHTarget struct {
	Login
	Auth          string `json:"auth,omitempty"`
	PrivateKey    string `json:"private_key,omitempty"`
	Passphrase    string `json:"passphrase,omitempty"`
	Certificate   string `json:"certificate,omitempty"`
	HostKey       string `json:"host_key,omitempty"`
	ServerHostKey string `json:"server_host_key,omitempty"`
}

// MongoTarget is the mongodb part: the connection string (no credentials),
// the auth database and TLS. An empty Username: connect without logging in
// (a probe of the server alone).
type MongoTarget struct {
	Login
	URI          string `json:"uri,omitempty"`
	AuthDatabase string `json:"auth_database,omitempty"`
	TargetTLS
}

// MSSQLTarget is the mssql part: the database clients land in unless they
// name one, how the account logs in (Auth: sql, ntlm or kerberos) with its
// Domain, or its Realm, SPN and KDC (empty: found through DNS SRV
// records), TLS to the server, and the certificate and key pamd shows
// clients that ask for TLS (PEM).
type MSSQLTarget struct {
	Login
	Auth     string `json:"auth,omitempty"`
	Database string `json:"database,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Realm    string `json:"realm,omitempty"`
	SPN      string `json:"spn,omitempty"`
	KDC      string `json:"kdc,omitempty"`
	// Auth pkinit (certificate logins, no secret): the user's UPN and
	// SID as the db-client certificate carries them, the CA (PEM) that
	// signs the KDC's certificate, and the KDC host name accepted in it
	// (empty: only krbtgt/REALM).
	UPN         string `json:"upn,omitempty"`
	SID         string `json:"sid,omitempty"`
	KDCCA       string `json:"kdc_ca,omitempty"`
	KDCHostname string `json:"kdc_hostname,omitempty"`
	// Keytab (base64), for auth kerberos: the account's keys, instead
	// of its password.
	Keytab string `json:"keytab,omitempty"`
	TargetTLS
	// TLSStrict: the server speaks TDS 8.0 (TLS before PRELOGIN).
	TLSStrict     bool   `json:"tls_strict,omitempty"`
	ServerTLSCert string `json:"server_tls_cert,omitempty"`
	ServerTLSKey  string `json:"server_tls_key,omitempty"`
}

// PostgresTarget is the postgres part: the database the gateway logs in
// to, TLS to the server, and the certificate and key pamd shows clients
// that ask for TLS (PEM). An empty Username: reach the server (and its
// TLS) without logging in (a probe).
type PostgresTarget struct {
	Login
	Database string `json:"database,omitempty"`
	TargetTLS
	ServerTLSCert string `json:"server_tls_cert,omitempty"`
	ServerTLSKey  string `json:"server_tls_key,omitempty"`
}

// Secrets returns the descriptor's credentials, for scrubbing what targets
// say (Scrub).
func (d *Descriptor) Secrets() []string {
	if d == nil {
		return nil
	}
	var out []string
	if t := d.SSH; t != nil {
		out = append(out, t.Password, t.PrivateKey, t.Passphrase, t.ServerHostKey)
	}
	if t := d.Mongo; t != nil {
		out = append(out, t.Password)
	}
	if t := d.MSSQL; t != nil {
		out = append(out, t.Password, t.ServerTLSKey, t.Keytab)
	}
	if t := d.Postgres; t != nil {
		out = append(out, t.Password, t.ServerTLSKey)
	}
	return out
}

// MinScrub is the shortest secret Scrub removes: a shorter one would match
// too much ordinary text.
const MinScrub = 4

// Scrub replaces each secret of at least MinScrub characters in text with
// "[redacted]"; targets' messages may echo what they were given.
func Scrub(text string, secrets ...string) string {
	for _, s := range secrets {
		if utf8.RuneCountInString(s) >= MinScrub {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return text
}

// String describes the descriptor without any credential, for logs.
func (d *Descriptor) String() string {
	return d.Protocol + " " + d.Resource + "/" + d.Account + " → " + d.Target + " (session " + d.SessionID + ")"
}

// ProbeResult is the detail of a probe_result message.
type ProbeResult struct {
	// HostKey is the SSH host key the target presented (authorized_keys form).
	HostKey string `json:"host_key,omitempty"`
	// Version is the server's version (MongoDB).
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Ended is the detail of a notice stream's "ended" message.
type Ended struct {
	SessionID string `json:"session_id"`
	Reason    string `json:"reason"`
}

// Watched is the body of a watch stream: Watcher (a pamd user name) has
// begun watching the session live.
type Watched struct {
	SessionID string `json:"session_id"`
	Watcher   string `json:"watcher"`
}

// Record is one recorded happening of a session, sent gateway → server on
// a record stream. Which fields are set depends on Type:
//
//	pty        Term, Width, Height          a terminal was requested
//	shell                                   an interactive shell started
//	exec       Command                      a command started
//	subsystem  Command (the subsystem name)
//	o, i, e    Data                         a session channel's output, input,
//	                                        stderr (with a terminal or without)
//	r          Width, Height                the terminal was resized
//	exit       Status                       the command or shell exited
//	file       Op, Path, Size               an SFTP or SCP file operation
//	forward    Path (host:port)             a port forwarding channel
//	command    Database, Collection, Command (the name), Data (the command
//	           document as JSON, long values cut), Status (1 ok, 0 error),
//	           Error, Code, Docs (returned or affected), DurationMS, Truncated
//	sql, rpc   Database, Command (the batch; the procedures), Data (rpc: the
//	           parameters), Status, Error, Code, Rows, Affected, DurationMS,
//	           Truncated
//	query,     (postgres) Database, Command (the statement), Data (execute:
//	execute    the parameters), Op (the CommandComplete tag), Rows, Status,
//	           Error ("SQLSTATE code: message"), DurationMS, Truncated
//	copy       (postgres) as query, with Path "in" or "out" and Size (bytes)
//	error      Data                         the target could not be used
//	dropped    Op (the type), Size (its     a record too large to upload even
//	           encoded bytes), Data (why)   when split; the gateway keeps it
//
// A record is at most MaxRecordBody bytes encoded: the gateway splits
// stream data (o, i, e) over several records of the same type and time.
type Record struct {
	Seq          uint64    `json:"seq"` // per gateway, increasing; the server drops repeats
	SessionID    string    `json:"session_id"`
	ConnectionID string    `json:"connection_id"`
	Channel      int       `json:"channel"`
	Time         time.Time `json:"time"`
	Type         string    `json:"type"`
	Data         string    `json:"data,omitempty"`
	Term         string    `json:"term,omitempty"`
	Width        int       `json:"width,omitempty"`
	Height       int       `json:"height,omitempty"`
	Command      string    `json:"command,omitempty"`
	Status       *int      `json:"status,omitempty"`
	Op           string    `json:"op,omitempty"`
	Path         string    `json:"path,omitempty"`
	Size         int64     `json:"size,omitempty"`
	Database     string    `json:"database,omitempty"`
	Collection   string    `json:"collection,omitempty"`
	Error        string    `json:"error,omitempty"`
	Code         int       `json:"code,omitempty"`
	Docs         int64     `json:"docs,omitempty"`
	DurationMS   float64   `json:"duration_ms,omitempty"`
	// SQL Server: rows returned and rows affected by a batch or RPC.
	Rows     int64 `json:"rows,omitempty"`
	Affected int64 `json:"affected,omitempty"`
	// Truncated is set on sql, rpc and command records when a text was too
	// long to keep whole: see Cut.
	Truncated *Cut `json:"truncated,omitempty"`
}

// Cut describes what a record left out of a long text. The text kept is
// its head and its tail around a "…[pamd: cut …]…" marker; Length and
// SHA256 are those of the whole text (its UTF-8), so that a copy of the
// statement can be matched to the record. Values inside a text (an RPC
// parameter, a MongoDB string) are cut the same way in place, each marker
// giving its value's length and hash.
type Cut struct {
	// Field is the field cut as a whole ("command" or "data"), empty when
	// only values inside were cut.
	Field  string `json:"field,omitempty"`
	Length int64  `json:"length,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Values is how many values inside were cut in place.
	Values int `json:"values,omitempty"`
	// Unread is set when the request was longer than pamd reads for its
	// log (an RPC request past 1 MiB): Length and SHA256 are then those of
	// the whole request as sent, and its end is not in the record.
	Unread bool `json:"unread,omitempty"`
}

// MaxRecordBody bounds one Record's JSON encoding, so that a batch of them
// fits in one message however the data escapes (in JSON '<', '>', '&',
// control bytes and invalid UTF-8 take 6 bytes each).
const MaxRecordBody = 256 << 10

// Backlog is the detail of a backlog message: the records a gateway has
// spooled that the server has not acknowledged, and their encoded size.
type Backlog struct {
	Records int   `json:"records"`
	Bytes   int64 `json:"bytes"`
}

// Rotation asks a gateway to change an account's credential on its target.
// It holds credentials: never log it.
type Rotation struct {
	// Account is the account being rotated, with its current credential.
	Account Descriptor `json:"account"`
	// With is the rotation account that makes the change; nil: the account
	// changes its own credential.
	With *Descriptor `json:"with,omitempty"`
	// The new credential: a password, or for SSH key accounts a private key
	// (OpenSSH PEM) and its public key (authorized_keys form).
	NewPassword   string `json:"new_password,omitempty"`
	NewPrivateKey string `json:"new_private_key,omitempty"`
	NewPublicKey  string `json:"new_public_key,omitempty"`
	// Resume says an earlier attempt with this same new credential was
	// interrupted: the target may already have it.
	Resume bool `json:"resume,omitempty"`
}

// Secrets returns every credential the rotation holds: the account's, the
// rotation account's and the new one.
func (r *Rotation) Secrets() []string {
	return append(append(r.Account.Secrets(), r.With.Secrets()...), r.NewPassword, r.NewPrivateKey)
}

// RotationResult is the detail of a rotation_result message. Its texts are
// readable and never hold a credential.
type RotationResult struct {
	// Verified: the new credential logs in; the server keeps it.
	Verified bool `json:"verified"`
	// OldWorks: (not verified) the old credential still logs in, so the
	// server drops the new one. With neither, the server keeps both.
	OldWorks bool   `json:"old_works,omitempty"`
	Error    string `json:"error,omitempty"`
	// Warning is something left undone after a verified change (an old key
	// still authorized, say).
	Warning string `json:"warning,omitempty"`
}

// Renewal asks the server for a new client certificate for the gateway that
// opened the stream. CSR is a PEM certificate request for a new key (only
// its key is used: the certificate names the gateway the connection
// authenticated); Serial is the certificate the gateway holds now, which
// stays valid until the gateway connects with the new one, in case this
// answer is lost.
type Renewal struct {
	CSR    string `json:"csr"`
	Serial string `json:"serial"`
}

// DBClientCertRequest is the body of a dbcert stream (gateway → server):
// a certificate request (PEM) for a key the gateway made, to log in with
// PKINIT for a connection of the session. The server signs it from the
// db-client CA for the session's account, until the session's expiry
// (at most an hour), and answers with a certificate message
// (RenewalResult).
type DBClientCertRequest struct {
	SessionID string `json:"session_id"`
	CSR       string `json:"csr"`
}

// RenewalResult is the detail of a certificate message: the new client
// certificate (PEM) and when it expires. In a renewal's answer, ServerCAs
// are the fingerprints the gateway is to pin from now on: the server CA's
// and, while it is being rotated, the next one's (the gateway trusts
// both). Empty (an older server): the gateway keeps its pins.
type RenewalResult struct {
	Certificate string    `json:"certificate"`
	ExpiresAt   time.Time `json:"expires_at"`
	ServerCAs   []string  `json:"server_cas,omitempty"`
}

// RenewNow is the body of a renew-now stream (server → gateway): a CA
// rotation began, completed or was rolled back, so the gateway renews its
// certificate now (from the CA that issues now, learning the server CAs
// to pin) rather than at half of its lifetime.
type RenewNow struct {
	Reason string `json:"reason"`
}
