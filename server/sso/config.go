package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/store"
)

// Defaults of the settings.
var (
	DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email", "groups"}
)

const (
	DefaultGroupsClaim = "groups"
	DefaultMFAMaxAge   = 10 * time.Minute
	// providerTTL is how long a discovery document is trusted before it is
	// fetched again (the keys have their own refresh in go-oidc).
	providerTTL = time.Hour
	// discoverEvery is the most often discovery is read.
	discoverEvery = time.Second
)

// ErrOff is the answer when SSO is not configured.
var ErrOff = api.Errorf(http.StatusNotFound, "SSO is not configured on this server (an admin runs pamd sso set)")

// Config is what the service needs of the server.
type Config struct {
	Store *store.Store
	Log   *slog.Logger
	// HTTP talks to the provider; nil: a client with a 15 s timeout.
	HTTP *http.Client
}

// Service is the server's side of SSO.
type Service struct {
	st    *store.Store
	log   *slog.Logger
	trail audit.Trail
	http  *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	issuer   string    // the provider's
	fetched  time.Time // when its discovery was read
	// the last read of a discovery document, for its rate
	tried       time.Time
	triedIssuer string
	lastErr     error
	pending     map[string]*pending
	devices     map[string]*pendingDevice // by handle
}

// New is the SSO service.
func New(cfg Config) *Service {
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	return &Service{st: cfg.Store, log: cfg.Log, trail: audit.Trail{St: cfg.Store, Log: cfg.Log}, http: hc, pending: map[string]*pending{}, devices: map[string]*pendingDevice{}}
}

// Settings is the stored configuration, or ErrOff.
func (s *Service) Settings() (*store.SSOConfig, error) {
	var c *store.SSOConfig
	err := s.st.View(func(tx *store.Tx) (err error) {
		c, err = tx.SSOConfig()
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrOff
	}
	return c, err
}

// Enabled says whether SSO logins are offered.
func (s *Service) Enabled() bool {
	_, err := s.Settings()
	return err == nil
}

// Parse checks settings as sent and makes the stored form; old is the
// stored one (nil: none), whose secret KeepSecret keeps.
func Parse(in api.SSOSettings, old *store.SSOConfig) (*store.SSOConfig, error) {
	c := &store.SSOConfig{Issuer: strings.TrimSpace(in.Issuer), ClientID: strings.TrimSpace(in.ClientID), ClientSecret: in.ClientSecret,
		Scopes: in.Scopes, GroupsClaim: strings.TrimSpace(in.GroupsClaim), DefaultRole: in.DefaultRole,
		RequireMFAClaim: in.RequireMFAClaim, MFAMaxAge: DefaultMFAMaxAge}
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return nil, api.Errorf(http.StatusBadRequest, "issuer: give the provider's issuer URL (https://...)")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, api.Errorf(http.StatusBadRequest, "issuer %q: want an absolute URL with no query (https://...)", audit.Name(c.Issuer))
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())):
		return nil, api.Errorf(http.StatusBadRequest, "issuer %s: want https (plain http only on a loopback address, for tests)", c.Issuer)
	case c.ClientID == "" || len(c.ClientID) > 255:
		return nil, api.Errorf(http.StatusBadRequest, "client ID: 1 to 255 characters")
	case len(c.ClientSecret) > 1024:
		return nil, api.Errorf(http.StatusBadRequest, "client secret: at most 1024 characters")
	}
	if c.ClientSecret == "" {
		if !in.KeepSecret || old == nil || old.Issuer != c.Issuer || old.ClientID != c.ClientID {
			return nil, api.Errorf(http.StatusBadRequest, "client secret: give it (--client-secret-stdin)")
		}
		c.ClientSecret = old.ClientSecret
	}
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	for _, sc := range c.Scopes {
		if sc == "" || len(sc) > 128 || strings.ContainsAny(sc, " \t\r\n\"\\") {
			return nil, api.Errorf(http.StatusBadRequest, "scope %q: one word, no spaces", audit.Name(sc))
		}
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if len(c.GroupsClaim) > 128 {
		return nil, api.Errorf(http.StatusBadRequest, "groups claim: at most 128 characters")
	}
	if c.DefaultRole != "" {
		if err := api.ValidName("role", c.DefaultRole); err != nil {
			return nil, err
		}
	}
	for _, m := range in.Map {
		if m.Group == "" || len(m.Group) > 256 {
			return nil, api.Errorf(http.StatusBadRequest, "map: a group is 1 to 256 characters (GROUP=ROLE)")
		}
		if err := api.ValidName("role", m.Role); err != nil {
			return nil, err
		}
		c.Map = append(c.Map, store.SSOGroupRole{Group: m.Group, Role: m.Role})
	}
	if in.MFAMaxAge != "" {
		d, err := time.ParseDuration(in.MFAMaxAge)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			return nil, api.Errorf(http.StatusBadRequest, "mfa max age %q: want a duration from 1m to 24h", audit.Name(in.MFAMaxAge))
		}
		c.MFAMaxAge = d
	}
	return c, nil
}

// View is the settings as shown: never the secret.
func View(c *store.SSOConfig) api.SSOView {
	v := api.SSOView{Enabled: true, Issuer: c.Issuer, ClientID: c.ClientID, HasSecret: c.ClientSecret != "", Scopes: c.Scopes,
		GroupsClaim: c.GroupsClaim, DefaultRole: c.DefaultRole, RequireMFAClaim: c.RequireMFAClaim,
		MFAMaxAge: c.MFAMaxAge.String(), UpdatedAt: c.UpdatedAt, UpdatedBy: c.UpdatedBy, CLIRedirectURI: CLIRedirectURI}
	for _, m := range c.Map {
		v.Map = append(v.Map, api.SSOGroupRole{Group: m.Group, Role: m.Role})
	}
	return v
}

// CLIRedirectURI is what to register at the provider for pamd login --sso:
// the CLI listens on an ephemeral port, which RFC 8252 (7.3) says the
// provider must allow for a loopback IP redirect.
const CLIRedirectURI = "http://127.0.0.1/callback"

// ConsolePath is the console's redirect path on the server.
const ConsolePath = "/api/v1/sso/callback"

// Check fetches the provider's discovery document for c: what pamd sso set
// does before storing settings, so a wrong issuer is found at once.
func (s *Service) Check(ctx context.Context, c *store.SSOConfig) error {
	_, err := s.discover(ctx, c.Issuer, true)
	return err
}

// discover is the provider of issuer, from the cache unless fresh is set
// or it is older than providerTTL.
//
// Even a fresh read is at most one a second, whatever it found: logins
// can be started by anyone, and a flood of them must not become a flood
// toward the provider.
func (s *Service) discover(ctx context.Context, issuer string, fresh bool) (*oidc.Provider, error) {
	s.mu.Lock()
	recent := s.triedIssuer == issuer && time.Since(s.tried) < discoverEvery
	if fresh && recent && s.lastErr != nil {
		err := s.lastErr
		s.mu.Unlock()
		return nil, err
	}
	if s.provider != nil && s.issuer == issuer && time.Since(s.fetched) < providerTTL && (!fresh || recent) {
		p := s.provider
		s.mu.Unlock()
		return p, nil
	}
	s.tried, s.triedIssuer = time.Now(), issuer
	s.mu.Unlock()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.http), issuer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = ProviderError{Issuer: issuer, Err: err}
		return nil, s.lastErr
	}
	s.provider, s.issuer, s.fetched, s.lastErr = p, issuer, time.Now(), nil
	return p, nil
}

// ProviderError is a provider that could not be reached or read.
type ProviderError struct {
	Issuer string
	Err    error
}

func (e ProviderError) Error() string {
	return fmt.Sprintf("the SSO provider %s cannot be reached or read: %v", e.Issuer, e.Err)
}
func (e ProviderError) Unwrap() error { return e.Err }

// apiError words err for the API: a provider problem is a bad gateway.
func apiError(err error) error {
	var pe ProviderError
	var ae *api.Error
	var le *LoginError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &le):
		return api.Errorf(le.Status, "%s", le.Msg)
	case errors.As(err, &pe):
		return api.Errorf(http.StatusBadGateway, "%s", pe.Error())
	}
	return err
}

func isLoopbackHost(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }
