package store

import (
	"errors"
	"time"
)

// bucketSSO holds the single sign-on settings (one value, "config").
const bucketSSO = "sso"

var ssoConfigKey = []byte("config")

// SSOConfig is how pamd signs users in through an OpenID Connect provider.
// ClientSecret is sealed like every value and never leaves the server.
type SSOConfig struct {
	Issuer       string   `json:"issuer"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes"`
	GroupsClaim  string   `json:"groups_claim"`
	// Map gives pamd roles to members of the provider's groups.
	Map         []SSOGroupRole `json:"map,omitempty"`
	DefaultRole string         `json:"default_role,omitempty"`
	// RequireMFAClaim lets an ID token whose amr shows MFA, authenticated
	// less than MFAMaxAge ago, stand for a pamd TOTP code.
	RequireMFAClaim bool          `json:"require_mfa_claim,omitempty"`
	MFAMaxAge       time.Duration `json:"mfa_max_age,omitempty"`
	UpdatedAt       time.Time     `json:"updated_at"`
	UpdatedBy       string        `json:"updated_by"`
}

// SSOGroupRole is one line of the group mapping.
type SSOGroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// SSOConfig is the stored settings, or ErrNotFound when SSO is off.
func (t *Tx) SSOConfig() (*SSOConfig, error) { return get[SSOConfig](t, bucketSSO, ssoConfigKey) }

func (t *Tx) PutSSOConfig(c *SSOConfig) error { return put(t, bucketSSO, ssoConfigKey, c) }

// DeleteSSOConfig turns SSO off; its users stay (and cannot log in).
func (t *Tx) DeleteSSOConfig() error { return t.bucket(bucketSSO).Delete(ssoConfigKey) }

// ssoIndex is the index kind of an issuer's subjects: a user is found by
// the provider's stable subject, never by a name the provider may reuse.
func ssoIndex(issuer string) string { return "sso:" + issuer }

// UserBySSO is the user linked to a provider's subject, or ErrNotFound.
func (t *Tx) UserBySSO(issuer, subject string) (*User, error) {
	id, err := t.lookup(ssoIndex(issuer), subject)
	if err != nil {
		return nil, err
	}
	u, err := t.User(id)
	if errors.Is(err, ErrNotFound) { // deleted since: the link is stale
		return nil, ErrNotFound
	}
	return u, err
}

// CreateSSOUser stores a new user linked to u.SSOIssuer and u.SSOSubject.
func (t *Tx) CreateSSOUser(u *User) error {
	if u.SSOIssuer == "" || u.SSOSubject == "" {
		return errors.New("store: an SSO user needs an issuer and a subject")
	}
	if err := t.CreateUser(u); err != nil {
		return err
	}
	return t.setIndex(ssoIndex(u.SSOIssuer), u.SSOSubject, u.ID)
}
