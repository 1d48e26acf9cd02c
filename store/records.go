package store

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

const (
	bucketUsers       = "users"
	bucketRoles       = "roles"
	bucketTokens      = "tokens"
	bucketGateways    = "gateways"
	bucketEnroll      = "enroll_tokens"
	bucketResources   = "resources"
	bucketAccounts    = "accounts"
	bucketSessions    = "sessions"
	bucketConnections = "connections"
	bucketAudit       = "audit"
	bucketSecrets     = "secrets"
	bucketRecordings  = "recordings"
	// bucketRecordingSeen holds, for each record stored, the session, the
	// gateway and that gateway's own number of it (under the index HMAC),
	// so a batch sent again after a lost ack is stored once.
	bucketRecordingSeen = "recording_seen"
)

// NewID returns a random identifier: 20 lowercase base32 characters.
func NewID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// User is a person (or robot) who logs in.
type User struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Roles              []string `json:"roles"`
	PasswordHash       string   `json:"password_hash"`
	MustChangePassword bool     `json:"must_change_password,omitempty"`
	MFASecret          string   `json:"mfa_secret,omitempty"`
	MFAPending         string   `json:"mfa_pending,omitempty"`
	MFALastStep        uint64   `json:"mfa_last_step,omitempty"`
	Disabled           bool     `json:"disabled,omitempty"`
	// FailedLogins and LockedUntil are no longer set: failures are
	// throttled per source instead (an account lock let strangers lock an
	// admin out). Kept so older stores still open.
	FailedLogins int       `json:"failed_logins,omitempty"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	// An SSO user was created by a login through the OpenID provider
	// SSOIssuer as its subject SSOSubject; it has no password. SSOGroups
	// are the groups its last login brought.
	SSOIssuer  string    `json:"sso_issuer,omitempty"`
	SSOSubject string    `json:"sso_subject,omitempty"`
	SSOGroups  []string  `json:"sso_groups,omitempty"`
	SSOLoginAt time.Time `json:"sso_login_at,omitzero"`
}

// IsSSO says whether the user signs in through the OpenID provider only.
func (u *User) IsSSO() bool { return u.SSOSubject != "" }

// Role grants access to resource/account patterns.
type Role struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Description   string        `json:"description,omitempty"`
	Allow         []string      `json:"allow,omitempty"`
	MaxDuration   time.Duration `json:"max_duration,omitempty"`
	RequireReason bool          `json:"require_reason,omitempty"`
	Builtin       bool          `json:"builtin,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	// Request is patterns granted only through an approved access request
	// (see Request): Approvers are the roles whose holders approve (none:
	// admin), Approvals how many distinct ones must (0: one), RequestTTL
	// how long a request waits (0: 24h). MaxDuration caps the grant.
	Request    []string      `json:"request,omitempty"`
	Approvers  []string      `json:"approvers,omitempty"`
	Approvals  int           `json:"approvals,omitempty"`
	RequestTTL time.Duration `json:"request_ttl,omitempty"`
}

// Token is an API token, keyed by the SHA-256 of its secret.
type Token struct {
	Hash      string    `json:"hash"`
	UserID    string    `json:"user_id"`
	Source    string    `json:"source,omitempty"` // the address that logged in
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// MFAAt is when the provider last checked a second factor of the SSO
	// login that made the token (its ID token's auth_time, when amr shows
	// MFA); zero otherwise.
	MFAAt time.Time `json:"mfa_at,omitzero"`
}

// Gateway is an enrolled gateway.
type Gateway struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CertSerial string `json:"cert_serial,omitempty"`
	// PrevSerial is the certificate the gateway held when it last renewed:
	// accepted too until the gateway connects with CertSerial, since the
	// answer to a renewal can be lost. Revoking clears both serials.
	PrevSerial    string    `json:"prev_serial,omitempty"`
	CertExpiresAt time.Time `json:"cert_expires_at,omitzero"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	EnrolledAt    time.Time `json:"enrolled_at,omitzero"`
	LastSeen      time.Time `json:"last_seen,omitzero"`
	Version       string    `json:"version,omitempty"`
	RemoteAddr    string    `json:"remote_addr,omitempty"`
	// Group is the gateway group the admin put it in (pamd gateways token
	// --group, pamd gateways set --group): the hub admits it to that group
	// only, whatever its hello says.
	Group string `json:"group,omitempty"`
}

// EnrollToken lets one gateway enroll once, keyed by the SHA-256 of its secret.
type EnrollToken struct {
	Hash        string    `json:"hash"`
	GatewayName string    `json:"gateway_name"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	UsedAt      time.Time `json:"used_at,omitzero"`
	// Replace lets the token enroll a name that is already enrolled; the
	// old certificate stops working when the new gateway enrolls.
	Replace bool `json:"replace,omitempty"`
	// Group is the gateway group the enrolled gateway is put in (its
	// record's Group), if any.
	Group string `json:"group,omitempty"`
}

// Resource is something reachable through a gateway.
type Resource struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Gateway string `json:"gateway"`
	// GatewayGroup is set instead of Gateway when any live gateway of the
	// group may serve the resource.
	GatewayGroup string            `json:"gateway_group,omitempty"`
	Host         string            `json:"host"`
	Port         int               `json:"port"`
	Options      map[string]string `json:"options,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
}

// Account is a credential on a resource.
type Account struct {
	ID         string `json:"id"`
	ResourceID string `json:"resource_id"`
	Name       string `json:"name"`
	Username   string `json:"username,omitempty"`
	Password   string `json:"password,omitempty"`
	Auth       string `json:"auth,omitempty"`        // ssh: password, key or certificate
	PrivateKey string `json:"private_key,omitempty"` // ssh key auth: OpenSSH or PEM private key
	Passphrase string `json:"passphrase,omitempty"`  // of PrivateKey
	// mssql: Auth is sql, ntlm or kerberos; NTLM needs the Domain,
	// Kerberos the Realm, the server's SPN and optionally a KDC.
	Domain      string    `json:"domain,omitempty"`
	Realm       string    `json:"realm,omitempty"`
	SPN         string    `json:"spn,omitempty"`
	KDC         string    `json:"kdc,omitempty"`
	UPN         string    `json:"upn,omitempty"`          // mssql pkinit: the UPN and SID its db-client certificate carries,
	SID         string    `json:"sid,omitempty"`          // (empty: none),
	KDCCA       string    `json:"kdc_ca,omitempty"`       // the CA (PEM) that signs the KDC's certificate
	KDCHostname string    `json:"kdc_hostname,omitempty"` // and the KDC's DNS name accepted in it
	Keytab      string    `json:"keytab,omitempty"`       // mssql kerberos: a keytab (base64) instead of the password
	Description string    `json:"description,omitempty"`
	RequireMFA  bool      `json:"require_mfa,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Rotation    Rotation  `json:"rotation,omitzero"`
}

// Rotation is an account's credential rotation: its schedule, its last
// outcome, and a rotation under way.
type Rotation struct {
	// Interval is the schedule (0: on demand only), counted from Since (when
	// it was set) or the last attempt, whichever is later.
	Interval time.Duration `json:"interval,omitempty"`
	Since    time.Time     `json:"since,omitzero"`
	// With is the ID of the account on the same resource that makes the
	// change; empty: the account changes its own credential.
	With string `json:"with,omitempty"`
	// The last attempt and its outcome; Error is readable and holds no secret.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Result      string    `json:"result,omitempty"` // success or failure
	Error       string    `json:"error,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	// Pending is the new credential, sealed here before the target is
	// changed, while the old one stays in the account until the new one is
	// verified. A pending rotation found at start is resumed.
	Pending *PendingCredential `json:"pending,omitempty"`
}

// PendingCredential is a new credential not yet verified on the target.
type PendingCredential struct {
	Password   string    `json:"password,omitempty"`
	PrivateKey string    `json:"private_key,omitempty"` // OpenSSH PEM, unencrypted
	PublicKey  string    `json:"public_key,omitempty"`  // authorized_keys line
	Trigger    string    `json:"trigger"`
	Since      time.Time `json:"since"`
}

// Session is one access grant.
type Session struct {
	ID             string    `json:"id"`
	UserID         string    `json:"user_id"`
	UserName       string    `json:"user_name"`
	ResourceID     string    `json:"resource_id"`
	ResourceName   string    `json:"resource_name"`
	AccountID      string    `json:"account_id"`
	AccountName    string    `json:"account_name"`
	Reason         string    `json:"reason,omitempty"`
	ClientAddr     string    `json:"client_addr,omitempty"`
	CredentialHash string    `json:"credential_hash"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	EndReason      string    `json:"end_reason,omitempty"`
	// RequestID is the access request whose grant opened the session, and
	// RequestReason the reason given there.
	RequestID     string `json:"request_id,omitempty"`
	RequestReason string `json:"request_reason,omitempty"`
}

// Active reports whether the session may still carry connections at now.
func (s *Session) Active(now time.Time) bool {
	return s.EndedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Connection is one TCP connection inside a session.
type Connection struct {
	ID         string    `json:"id"`
	SessionID  string    `json:"session_id"`
	ClientAddr string    `json:"client_addr,omitempty"`
	Gateway    string    `json:"gateway,omitempty"` // the gateway that served it
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	BytesUp    int64     `json:"bytes_up"`
	BytesDown  int64     `json:"bytes_down"`
	Error      string    `json:"error,omitempty"`
}

// AuditEvent is one entry of the hash-chained audit log.
type AuditEvent struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Target   string    `json:"target,omitempty"`
	Outcome  string    `json:"outcome"`
	Source   string    `json:"source,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}
