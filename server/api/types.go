package api

import "time"

// Error is the body of every non-2xx answer.
type Error struct {
	Status  int    `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"error"`
	// RetryAfter, in seconds, comes with CodeThrottled (and the
	// Retry-After header).
	RetryAfter int `json:"retry_after,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Error codes a client may act on.
const (
	CodeMFARequired  = "mfa_required"
	CodeTokenExpired = "token_expired"
	CodeThrottled    = "throttled"
	CodeCannotWrite  = "cannot_write" // the server's disk refused a write (full?)
	CodeNotGranted   = "not_granted"  // no such target, or none of the caller's roles allows it
)

type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

type User struct {
	Name               string    `json:"name"`
	Roles              []string  `json:"roles"`
	MFAEnabled         bool      `json:"mfa_enabled"`
	Disabled           bool      `json:"disabled"`
	LockedUntil        time.Time `json:"locked_until,omitzero"`
	MustChangePassword bool      `json:"must_change_password,omitempty"`
	CreatedAt          time.Time `json:"created_at"`
	SSO                bool      `json:"sso,omitempty"` // signs in through the SSO provider, no password
}

type CreateUserRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// CreateUserResponse carries the one-time password; it is shown once.
type CreateUserResponse struct {
	User     User   `json:"user"`
	Password string `json:"password"`
}

type ChangePasswordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// MFAEnrollRequest starts an MFA enrolment; it needs the password.
type MFAEnrollRequest struct {
	Password string `json:"password"`
}

// TokenInfo is one of a user's API tokens, without its secret.
type TokenInfo struct {
	ID        string    `json:"id"`
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Current   bool      `json:"current,omitempty"` // the token of the request
}

// RevokeTokensResponse says what a revocation ended.
type RevokeTokensResponse struct {
	Revoked       int `json:"revoked"`
	SessionsEnded int `json:"sessions_ended"`
}

// UserUpdate changes a user's roles: AddRoles are granted (from the next
// session), RemoveRoles taken away at once.
type UserUpdate struct {
	AddRoles    []string `json:"add_roles,omitempty"`
	RemoveRoles []string `json:"remove_roles,omitempty"`
}

// UserChange is a changed or removed user and what the change ended: their
// API tokens, and the live sessions their roles no longer grant.
type UserChange struct {
	User          User `json:"user"`
	TokensRevoked int  `json:"tokens_revoked"`
	SessionsEnded int  `json:"sessions_ended"`
}

// ResetPasswordResponse carries the user's new one-time password; it is
// shown once.
type ResetPasswordResponse struct {
	UserChange
	Password string `json:"password"`
}

// RoleUpdate changes what is set. Allow replaces the patterns; AddAllow
// and RemoveAllow edit them instead.
type RoleUpdate struct {
	Allow         *[]string `json:"allow,omitempty"`
	AddAllow      []string  `json:"add_allow,omitempty"`
	RemoveAllow   []string  `json:"remove_allow,omitempty"`
	MaxDuration   *string   `json:"max_duration,omitempty"`
	RequireReason *bool     `json:"require_reason,omitempty"`
	Description   *string   `json:"description,omitempty"`
	// Request replaces the patterns granted through access requests;
	// AddRequest and RemoveRequest edit them instead.
	Request       *[]string `json:"request,omitempty"`
	AddRequest    []string  `json:"add_request,omitempty"`
	RemoveRequest []string  `json:"remove_request,omitempty"`
	Approvers     *[]string `json:"approvers,omitempty"`
	Approvals     *int      `json:"approvals,omitempty"`
	RequestTTL    *string   `json:"request_ttl,omitempty"`
}

// RoleChange is an edited role and the live sessions that ended because
// it no longer grants them.
type RoleChange struct {
	Role          Role `json:"role"`
	SessionsEnded int  `json:"sessions_ended"`
}

// GatewayRemoval says what removing a gateway did: the resources moved to
// another gateway, and whether its tunnel was cut.
type GatewayRemoval struct {
	Name    string   `json:"name"`
	MovedTo string   `json:"moved_to,omitempty"`
	Moved   []string `json:"moved"`
	Cut     bool     `json:"cut"`
}

type MFAEnrollResponse struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
	QRCode string `json:"qr_code,omitempty"` // PNG data URL, for the web console
}

type MFAConfirmRequest struct {
	Code string `json:"code"`
}

type Role struct {
	Name          string   `json:"name"`
	Description   string   `json:"description,omitempty"`
	Allow         []string `json:"allow"`
	MaxDuration   string   `json:"max_duration,omitempty"`
	RequireReason bool     `json:"require_reason"`
	Builtin       bool     `json:"builtin"`
	// Request is patterns granted through an approved access request:
	// approved by holders of Approvers (none: admin), Approvals of them
	// (0: one); a request waits RequestTTL (empty: 24h).
	Request    []string `json:"request"`
	Approvers  []string `json:"approvers,omitempty"`
	Approvals  int      `json:"approvals,omitempty"`
	RequestTTL string   `json:"request_ttl,omitempty"`
}

type Gateway struct {
	Name       string    `json:"name"`
	Online     bool      `json:"online"`
	Version    string    `json:"version,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	// Group is the gateway group the admin put it in, if any.
	Group string `json:"group,omitempty"`
	// CertExpiresAt is when the gateway's current certificate expires (it
	// renews it over the tunnel); RevokedAt is set once it was revoked.
	CertExpiresAt time.Time `json:"cert_expires_at,omitzero"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	// Backlog is what an online gateway last reported its spool holds that
	// the server has not stored yet; absent while unknown.
	Backlog *GatewayBacklog `json:"backlog,omitempty"`
}

// GatewayBacklog counts a gateway's session records not yet uploaded, and
// their encoded size.
type GatewayBacklog struct {
	Records int   `json:"records"`
	Bytes   int64 `json:"bytes"`
}

type GatewayTokenRequest struct {
	Name string `json:"name"`
	TTL  string `json:"ttl,omitempty"` // default 1h, at most 24h
	// Replace must be set to enroll a name that is already enrolled: the
	// current gateway's certificate is revoked when the new one enrolls.
	Replace bool `json:"replace,omitempty"`
	// Group puts the gateway that enrolls with the token in this gateway
	// group.
	Group string `json:"group,omitempty"`
}

// GatewayUpdate changes an enrolled gateway: Group, when set, puts it in
// that gateway group ("" takes it out of its group).
type GatewayUpdate struct {
	Group *string `json:"group,omitempty"`
}

type GatewayTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Command   string    `json:"command"`
}

// EnrollRequest is sent by a gateway with its one-time token and a CSR.
type EnrollRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"`
}

type EnrollResponse struct {
	Name        string `json:"name"`
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
}

type Resource struct {
	Name string `json:"name"`
	// HostKeyFingerprint is the pinned SSH host key of an ssh resource.
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	ID                 string `json:"id,omitempty"`
	Type               string `json:"type"`
	Gateway            string `json:"gateway"`
	// GatewayGroup is set instead of Gateway when any connected gateway of
	// the group serves the resource.
	GatewayGroup string            `json:"gateway_group,omitempty"`
	Host         string            `json:"host"`
	Port         int               `json:"port"`
	Options      map[string]string `json:"options,omitempty"`
	// Address is where the resource is, as its kind says it (host:port, a
	// connection string); Details are what else its kind shows.
	Address string   `json:"address,omitempty"`
	Details []Detail `json:"details,omitempty"`
	// Version is the target's server version, where its kind learns it.
	Version   string    `json:"version,omitempty"`
	Accounts  []Account `json:"accounts,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Warnings are said once, when the resource is created.
	Warnings []string `json:"warnings,omitempty"`
}

// Account never carries the secret; HasPassword says whether one is stored.
type Account struct {
	Resource    string    `json:"resource"`
	Name        string    `json:"name"`
	Username    string    `json:"username,omitempty"`
	Auth        string    `json:"auth,omitempty"`
	Domain      string    `json:"domain,omitempty"`
	Realm       string    `json:"realm,omitempty"`
	SPN         string    `json:"spn,omitempty"`
	KDC         string    `json:"kdc,omitempty"`
	UPN         string    `json:"upn,omitempty"`
	SID         string    `json:"sid,omitempty"`
	KDCHostname string    `json:"kdc_hostname,omitempty"`
	HasKDCCA    bool      `json:"has_kdc_ca,omitempty"`
	HasKeytab   bool      `json:"has_keytab,omitempty"`
	Description string    `json:"description,omitempty"`
	RequireMFA  bool      `json:"require_mfa"`
	HasPassword bool      `json:"has_password"`
	HasKey      bool      `json:"has_key,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	Rotation    *Rotation `json:"rotation,omitempty"`
	// Rotatable says the account's credential can be rotated.
	Rotatable bool `json:"rotatable"`
	// Warnings are said once, when the account is added or changed (one
	// stored without a login check, say).
	Warnings []string `json:"warnings,omitempty"`
}

// Rotation is an account's credential rotation status; it never holds a
// credential.
type Rotation struct {
	Interval    string    `json:"interval,omitempty"`    // e.g. 30d; empty: on demand only
	RotateWith  string    `json:"rotate_with,omitempty"` // account on the same resource that makes the change
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Result      string    `json:"result,omitempty"` // success or failure
	Error       string    `json:"error,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	NextRun     time.Time `json:"next_run,omitzero"`
	// Pending: a rotation was interrupted; pamd resumes it.
	Pending      bool      `json:"pending,omitempty"`
	PendingSince time.Time `json:"pending_since,omitzero"`
}

// RotateResult answers a rotation request.
type RotateResult struct {
	Account Account `json:"account"`
	// LiveSessions on the account keep their open connections; their new
	// connections use the new credential.
	LiveSessions int `json:"live_sessions"`
}

type CreateAccountRequest struct {
	Name        string `json:"name"`
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
	Auth        string `json:"auth,omitempty"` // ssh: password (default), key, certificate; mssql: sql (default), ntlm, kerberos
	Domain      string `json:"domain,omitempty"`
	Realm       string `json:"realm,omitempty"`
	SPN         string `json:"spn,omitempty"`
	KDC         string `json:"kdc,omitempty"`
	UPN         string `json:"upn,omitempty"`          // mssql pkinit: the certificate's UPN and SID,
	SID         string `json:"sid,omitempty"`          // (empty: none),
	KDCCA       string `json:"kdc_ca,omitempty"`       // the CA (PEM) of the KDC's certificate,
	KDCHostname string `json:"kdc_hostname,omitempty"` // the KDC's DNS name in it
	Keytab      string `json:"keytab,omitempty"`       // mssql kerberos: a keytab (base64) instead of the password
	PrivateKey  string `json:"private_key,omitempty"`
	Passphrase  string `json:"passphrase,omitempty"`
	Description string `json:"description,omitempty"`
	RequireMFA  bool   `json:"require_mfa,omitempty"`
	// SkipLoginCheck stores the account without logging in to the target
	// with it first (the target is down, or does not trust the SSH CA yet).
	SkipLoginCheck bool `json:"skip_login_check,omitempty"`
}

// CatalogEntry is one resource/account the caller may open a session to.
type CatalogEntry struct {
	Resource      string `json:"resource"`
	Type          string `json:"type"`
	Account       string `json:"account"`
	Username      string `json:"username,omitempty"`
	Gateway       string `json:"gateway"`
	GatewayGroup  string `json:"gateway_group,omitempty"`
	GatewayOnline bool   `json:"gateway_online"` // of a group: any of its gateways
	RequireMFA    bool   `json:"require_mfa"`
	RequireReason bool   `json:"require_reason"`
	MaxDuration   string `json:"max_duration"`
	// OnRequest marks a target the caller reaches only through an approved
	// access request (pamd requests create); GrantEnds is the end of the
	// caller's approved one, if they hold one now.
	OnRequest bool      `json:"on_request,omitempty"`
	GrantEnds time.Time `json:"grant_ends,omitzero"`
}

type CreateSessionRequest struct {
	Resource string `json:"resource"`
	Account  string `json:"account"`
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason,omitempty"`
	TOTP     string `json:"totp,omitempty"`
}

// SessionGrant answers CreateSessionRequest. Credential authenticates the
// tunnel streams of this session and is shown only here.
type SessionGrant struct {
	Session    Session `json:"session"`
	Credential string  `json:"credential"`
	// SSHHostKey is the host key pamd presents for an ssh resource, in
	// authorized_keys form, for the client's known_hosts.
	SSHHostKey string `json:"ssh_host_key,omitempty"`
	// TLSCA is the CA (PEM) that signed the certificate pamd shows SQL
	// Server clients asking for encryption: trust it, or trust the server
	// certificate in the client.
	TLSCA    string `json:"tls_ca,omitempty"`
	Database string `json:"database,omitempty"` // mssql: where clients land
	Username string `json:"username,omitempty"`
	// ClientLines are what pamd connect prints once it listens, after the
	// session and listening lines, and ClientFields what it adds to its
	// JSON line. Both are templates: pamd connect replaces {port} with
	// the port it listens on, {known_hosts} with the known_hosts file it
	// wrote for SSHHostKey and {tls_ca_file} with the file it wrote TLSCA to.
	// A command to paste is a line as it is; a note for the person starts
	// with "pamd: ", like pamd's other messages.
	ClientLines  []string          `json:"client_lines,omitempty"`
	ClientFields map[string]string `json:"client_fields,omitempty"`
	// ClientCommands are the native clients pamd connect --exec can run,
	// in order of preference: each is a program and its arguments, with
	// the same templates as ClientLines.
	ClientCommands [][]string `json:"client_commands,omitempty"`
	// Refusal is how pamd connect refuses a local connection it cannot
	// serve (an expired session, a gateway gone) so that the client shows
	// why: RefusalTDS, RefusalPostgres, or empty to close the connection.
	Refusal string `json:"refusal,omitempty"`
}

// Refusal styles of a SessionGrant.
const (
	// RefusalTDS answers the client's PRELOGIN and LOGIN7 with a login
	// error (SQL Server clients).
	RefusalTDS = "tds"
	// RefusalPostgres answers the client's startup (SSLRequest included)
	// with a FATAL ErrorResponse (PostgreSQL clients).
	RefusalPostgres = "postgres"
)

type Session struct {
	ID           string       `json:"id"`
	User         string       `json:"user"`
	Resource     string       `json:"resource"`
	ResourceType string       `json:"resource_type,omitempty"`
	Account      string       `json:"account"`
	Reason       string       `json:"reason,omitempty"`
	ClientAddr   string       `json:"client_addr,omitempty"`
	CreatedAt    time.Time    `json:"created_at"`
	ExpiresAt    time.Time    `json:"expires_at"`
	EndedAt      time.Time    `json:"ended_at,omitzero"`
	EndReason    string       `json:"end_reason,omitempty"`
	Active       bool         `json:"active"`
	Connections  []Connection `json:"connections,omitempty"`
	// Ended says how an ended session ended, for people: "ended by the
	// user", "ended by admin NAME" (terminated), "expired", or the reason
	// pamd ended it (a role taken away, a gateway removed).
	Ended string `json:"ended,omitempty"`
	// Recorded says whether the session has records (a log, a replay).
	Recorded bool `json:"recorded"`
	// RequestID and RequestReason are those of the access request whose
	// grant opened the session, if one did.
	RequestID     string `json:"request_id,omitempty"`
	RequestReason string `json:"request_reason,omitempty"`
}

type Connection struct {
	ID         string    `json:"id"`
	ClientAddr string    `json:"client_addr,omitempty"`
	Gateway    string    `json:"gateway,omitempty"` // the gateway that served it
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	BytesUp    int64     `json:"bytes_up"`
	BytesDown  int64     `json:"bytes_down"`
	Error      string    `json:"error,omitempty"`
}

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

type AuditVerify struct {
	OK     bool   `json:"ok"`
	Events int    `json:"events"`
	Seq    uint64 `json:"broken_at,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Expected is the head asked for with ?expect= (SEQ:HASH or HASH), and
	// Holds whether the chain holds it: a store rolled back to an older
	// copy does not.
	Expected string `json:"expected,omitempty"`
	Holds    bool   `json:"holds_expected,omitempty"`
}

// AuditHead is the newest audit event: what an operator keeps outside pamd
// to tell a rolled-back store (pamd audit verify --expect).
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Info is public: what a client needs before logging in.
type Info struct {
	Version       string `json:"version"`
	CAFingerprint string `json:"ca_fingerprint"`
	// ResourceCA (PEM) signs the certificates the gateways show SQL clients
	// that ask for encryption: what those clients trust (never the server CA).
	ResourceCA string `json:"resource_ca,omitempty"`
}

// ResourceUpdate changes what is set; options merge into the resource's.
type ResourceUpdate struct {
	// Gateway or GatewayGroup moves the resource to a gateway or a group
	// (one of the two; the other is cleared).
	Gateway      *string           `json:"gateway,omitempty"`
	GatewayGroup *string           `json:"gateway_group,omitempty"`
	Host         *string           `json:"host,omitempty"`
	Port         *int              `json:"port,omitempty"`
	Options      map[string]string `json:"options,omitempty"`
}

// AccountUpdate changes what is set; a secret is replaced, never returned.
type AccountUpdate struct {
	Username   *string `json:"username,omitempty"`
	Password   *string `json:"password,omitempty"`
	Auth       *string `json:"auth,omitempty"`
	PrivateKey *string `json:"private_key,omitempty"`
	Passphrase *string `json:"passphrase,omitempty"`
	// The Windows login settings, as CreateAccountRequest has them ("" clears
	// one): mssql ntlm, kerberos and pkinit.
	Domain      *string `json:"domain,omitempty"`
	Realm       *string `json:"realm,omitempty"`
	SPN         *string `json:"spn,omitempty"`
	KDC         *string `json:"kdc,omitempty"`
	UPN         *string `json:"upn,omitempty"`
	SID         *string `json:"sid,omitempty"`
	KDCCA       *string `json:"kdc_ca,omitempty"` // PEM
	KDCHostname *string `json:"kdc_hostname,omitempty"`
	Keytab      *string `json:"keytab,omitempty"` // base64
	Description *string `json:"description,omitempty"`
	RequireMFA  *bool   `json:"require_mfa,omitempty"`
	// RotationInterval schedules rotation ("30d", "12h"; "0" turns it off);
	// RotateWith names the account that makes the change ("" for itself).
	RotationInterval *string `json:"rotation_interval,omitempty"`
	RotateWith       *string `json:"rotate_with,omitempty"`
	// SkipLoginCheck: store the change without logging in with it first.
	SkipLoginCheck bool `json:"skip_login_check,omitempty"`
}

// RevokeCertificateRequest names a db-client certificate to revoke by its
// serial number (decimal, or hex as 0x… or aa:bb:…); the answer gives it
// in decimal.
type RevokeCertificateRequest struct {
	Serial string `json:"serial"`
}

// The headers of every API answer saying what clients pin: the CA of the
// chain the server presents and, while the server CA is rotated, the
// next one (both "SHA256:…").
const (
	PinHeader     = "Pamd-CA-Fingerprint"
	NextPinHeader = "Pamd-Next-CA-Fingerprint"
)

// CARotation is one CA's rotation state (pamd ca rotate status, and the
// answer to a rotation step).
type CARotation struct {
	Type        string `json:"type"`               // server, gateway, resource, db-client, ssh
	Resource    string `json:"resource,omitempty"` // for ssh: the resource whose user CA it is
	Fingerprint string `json:"fingerprint"`        // the current CA's (for ssh, the key's as ssh-keygen -l shows it)
	// NextFingerprint is the next CA's while it is rotated (both trusted).
	NextFingerprint string    `json:"next_fingerprint,omitempty"`
	StartedAt       time.Time `json:"started_at,omitempty"`
	// PreviousFingerprint is the CA the last completed rotation retired.
	PreviousFingerprint string `json:"previous_fingerprint,omitempty"`
	// Gateways, for the gateway CA, say which CA each gateway's
	// certificate is from ("current" or "next") during its rotation.
	Gateways []CARotationGateway `json:"gateways,omitempty"`
	// Note says what the step means for clients and gateways.
	Note string `json:"note,omitempty"`
}

// CARotationGateway is one gateway during a rotation of the gateway CA.
type CARotationGateway struct {
	Name   string `json:"name"`
	CA     string `json:"ca"` // "current" or "next"
	Online bool   `json:"online"`
}
