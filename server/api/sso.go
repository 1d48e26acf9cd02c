package api

import "time"

// SSOSettings is what pamd sso set sends (PUT /api/v1/sso). ClientSecret
// is write-only: no answer carries it.
type SSOSettings struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// KeepSecret keeps the stored client secret when ClientSecret is empty.
	KeepSecret      bool           `json:"keep_secret,omitempty"`
	Scopes          []string       `json:"scopes,omitempty"`
	GroupsClaim     string         `json:"groups_claim,omitempty"`
	Map             []SSOGroupRole `json:"map,omitempty"`
	DefaultRole     string         `json:"default_role,omitempty"`
	RequireMFAClaim bool           `json:"require_mfa_claim,omitempty"`
	MFAMaxAge       string         `json:"mfa_max_age,omitempty"`
}

// SSOGroupRole gives Role to members of the provider's Group.
type SSOGroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// SSOView is the SSO settings as shown (GET /api/v1/sso): never the secret.
type SSOView struct {
	Enabled         bool           `json:"enabled"`
	Issuer          string         `json:"issuer,omitempty"`
	ClientID        string         `json:"client_id,omitempty"`
	HasSecret       bool           `json:"has_client_secret,omitempty"`
	Scopes          []string       `json:"scopes,omitempty"`
	GroupsClaim     string         `json:"groups_claim,omitempty"`
	Map             []SSOGroupRole `json:"map,omitempty"`
	DefaultRole     string         `json:"default_role,omitempty"`
	RequireMFAClaim bool           `json:"require_mfa_claim,omitempty"`
	MFAMaxAge       string         `json:"mfa_max_age,omitempty"`
	// The redirect URIs to register at the provider: the console's callback
	// and the CLI's loopback one (any port, RFC 8252).
	ConsoleRedirectURI string    `json:"console_redirect_uri,omitempty"`
	CLIRedirectURI     string    `json:"cli_redirect_uri,omitempty"`
	UpdatedAt          time.Time `json:"updated_at,omitzero"`
	UpdatedBy          string    `json:"updated_by,omitempty"`
}

// SSOStatus is what the login page learns (public): whether to offer SSO.
type SSOStatus struct {
	Enabled bool `json:"enabled"`
}

// SSOBeginRequest starts the CLI's login: the browser comes back to
// RedirectURI (http://127.0.0.1:PORT/callback); the CLI keeps the PKCE
// verifier of CodeChallenge (S256) to itself.
type SSOBeginRequest struct {
	RedirectURI   string `json:"redirect_uri"`
	CodeChallenge string `json:"code_challenge"`
}

type SSOBeginResponse struct {
	AuthURL string `json:"auth_url"`
	State   string `json:"state"`
}

// SSOFinishRequest ends the CLI's login with what the provider sent to the
// loopback redirect: a code, or its error.
type SSOFinishRequest struct {
	State            string `json:"state"`
	Code             string `json:"code,omitempty"`
	CodeVerifier     string `json:"code_verifier,omitempty"`
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// UserSync is the answer of POST /api/v1/users/{name}/sync.
type UserSync struct {
	User          User     `json:"user"`
	Added         []string `json:"added,omitempty"`
	Removed       []string `json:"removed,omitempty"`
	TokensRevoked int      `json:"tokens_revoked"`
	SessionsEnded int      `json:"sessions_ended"`
}

// SSODeviceStart is what pamd login --sso --device shows the person: the
// code to enter at the provider's page. Handle names the login in polls.
type SSODeviceStart struct {
	Handle                  string    `json:"handle"`
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	ExpiresAt               time.Time `json:"expires_at"`
}

type SSODevicePollRequest struct {
	Handle string `json:"handle"`
}

// SSODevicePoll is Pending until the person finished at the provider, then
// the login (as a password login's answer).
type SSODevicePoll struct {
	Pending bool           `json:"pending"`
	Login   *LoginResponse `json:"login,omitempty"`
}
