package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

const (
	// pendingTTL is how long a person has between starting a login and the
	// provider sending them back.
	pendingTTL = 10 * time.Minute
	// maxPending caps logins started and not finished, so a flood of
	// starts cannot fill the memory; perSource caps those of one address,
	// whose oldest a new one replaces (so a page that starts logins on a
	// visitor's behalf cannot lock the visitor out).
	maxPending = 10_000
	perSource  = 20
)

// pending is a login sent to the provider and not back yet, by its state.
type pending struct {
	redirectURI string
	nonce       string
	verifier    string // the console's PKCE verifier; the CLI keeps its own
	challenge   string // the CLI's S256 code challenge
	binding     string // SHA-256 of the console browser's cookie
	issuer      string // the settings it began under
	clientID    string
	source      string // the address that began it
	created     time.Time
}

// BeginRequest starts a login. The console's has a Binding (the hash of a
// cookie only that browser holds); the CLI's a loopback RedirectURI and
// its CodeChallenge.
type BeginRequest struct {
	RedirectURI   string
	CodeChallenge string
	Binding       string
	Source        string // the client's address
}

// Begin records a pending login and returns the provider's URL to send the
// browser to, and the login's state.
func (s *Service) Begin(ctx context.Context, req BeginRequest) (authURL, state string, err error) {
	c, err := s.Settings()
	if err != nil {
		return "", "", err
	}
	p := &pending{redirectURI: req.RedirectURI, nonce: randomString(), binding: req.Binding, issuer: c.Issuer, clientID: c.ClientID,
		source: req.Source, created: time.Now()}
	if req.Binding == "" {
		if err := checkLoopbackRedirect(req.RedirectURI); err != nil {
			return "", "", err
		}
		if len(req.CodeChallenge) != 43 { // base64url of a SHA-256, unpadded
			return "", "", api.Errorf(http.StatusBadRequest, "code challenge: want the S256 challenge of a PKCE verifier (43 characters)")
		}
		p.challenge = req.CodeChallenge
	} else {
		p.verifier = oauth2.GenerateVerifier()
		p.challenge = oauth2.S256ChallengeFromVerifier(p.verifier)
	}
	// Discovery is read again at each start: a provider that is down is
	// said so now, not after the person gave up waiting for the browser.
	prov, err := s.discover(ctx, c.Issuer, true)
	if err != nil {
		return "", "", apiError(err)
	}
	state = randomString()
	opts := []oauth2.AuthCodeOption{oidc.Nonce(p.nonce),
		oauth2.SetAuthURLParam("code_challenge", p.challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")}
	if c.RequireMFAClaim {
		// The provider must have authenticated the person recently, so
		// that the login's second factor is fresh enough to stand for a
		// TOTP code (OpenID Connect Core 3.1.2.1, max_age).
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.Itoa(int(c.MFAMaxAge/time.Second))))
	}
	authURL = oauthConfig(c, prov, p.redirectURI).AuthCodeURL(state, opts...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.limitSourceLocked(req.Source)
	if len(s.pending) >= maxPending {
		return "", "", api.Errorf(http.StatusServiceUnavailable, "too many SSO logins in progress: try again in a few minutes")
	}
	s.pending[state] = p
	return authURL, state, nil
}

// limitSourceLocked drops the oldest pending logins of source until a new
// one fits under perSource.
func (s *Service) limitSourceLocked(source string) {
	for {
		n, oldest := 0, ""
		for k, p := range s.pending {
			if p.source != source {
				continue
			}
			n++
			if oldest == "" || p.created.Before(s.pending[oldest].created) {
				oldest = k
			}
		}
		if n < perSource {
			return
		}
		delete(s.pending, oldest)
	}
}

func (s *Service) sweepLocked() {
	for k, p := range s.pending {
		if time.Since(p.created) > pendingTTL {
			delete(s.pending, k)
		}
	}
	for k, d := range s.devices {
		if time.Now().After(d.auth.Expiry) {
			delete(s.devices, k)
		}
	}
}

// FinishRequest is what came back from the provider: a code, or its error
// (Error and ErrorDescription, OAuth 2.0 4.1.2.1). The CLI gives its PKCE
// verifier; the console its browser's Binding.
type FinishRequest struct {
	State            string
	Code             string
	Verifier         string
	Binding          string
	Error            string
	ErrorDescription string
}

// LoginError is a failed login as a person and the audit log see it.
type LoginError struct {
	Status int
	Msg    string
}

func (e *LoginError) Error() string { return e.Msg }

func refused(format string, args ...any) *LoginError {
	return &LoginError{Status: http.StatusUnauthorized, Msg: fmt.Sprintf(format, args...)}
}

// Finish spends the pending login of req.State, exchanges the code (with
// the client secret and the PKCE verifier) and checks the ID token.
func (s *Service) Finish(ctx context.Context, req FinishRequest) (*Identity, error) {
	s.mu.Lock()
	p := s.pending[req.State]
	delete(s.pending, req.State) // a state works once
	s.mu.Unlock()
	switch {
	case p == nil || time.Since(p.created) > pendingTTL:
		return nil, refused("this SSO login is unknown or took longer than %s: start it again", pendingTTL)
	case req.Error != "":
		msg := "the SSO provider refused the login: " + printableText(req.Error, 64)
		if req.ErrorDescription != "" {
			msg += ": " + printableText(req.ErrorDescription, 300)
		}
		return nil, refused("%s", msg)
	case req.Code == "":
		return nil, refused("the SSO provider sent no code back")
	}
	verifier := p.verifier
	if p.binding != "" {
		if subtle.ConstantTimeCompare([]byte(req.Binding), []byte(p.binding)) != 1 {
			return nil, refused("this SSO login was started in another browser: start it again here")
		}
	} else {
		verifier = req.Verifier
		if subtle.ConstantTimeCompare([]byte(oauth2.S256ChallengeFromVerifier(verifier)), []byte(p.challenge)) != 1 {
			return nil, refused("the PKCE verifier does not match this login's challenge")
		}
	}
	c, err := s.Settings()
	if err != nil {
		return nil, err
	}
	if c.Issuer != p.issuer || c.ClientID != p.clientID {
		return nil, refused("the SSO settings changed during the login: start it again")
	}
	prov, err := s.discover(ctx, c.Issuer, false)
	if err != nil {
		return nil, err
	}
	tok, err := oauthConfig(c, prov, p.redirectURI).Exchange(oidc.ClientContext(ctx, s.http), req.Code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, refused("the SSO provider refused the code: %s", retrieveText(re))
		}
		return nil, ProviderError{Issuer: c.Issuer, Err: err}
	}
	return s.identity(ctx, c, prov, tok, p.nonce)
}

// identity checks the ID token of tok and reads who it names; claims the
// ID token leaves to the userinfo endpoint (OpenID Connect Core 5.4: a
// provider may, when it issues an access token) are read from there.
func (s *Service) identity(ctx context.Context, c *store.SSOConfig, prov *oidc.Provider, tok *oauth2.Token, nonce string) (*Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refused("the SSO provider sent no ID token (is the openid scope allowed for this client?)")
	}
	id, err := s.verify(ctx, c, prov.Verifier(&oidc.Config{ClientID: c.ClientID}), raw, nonce)
	if err != nil || (len(id.Names) > 0 && id.Groups != nil) || prov.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		return id, err
	}
	ui, err := prov.UserInfo(oidc.ClientContext(ctx, s.http), oauth2.StaticTokenSource(tok))
	if err != nil {
		if len(id.Names) == 0 {
			return nil, refused("the SSO provider's ID token has no user name, and its userinfo endpoint failed: %v", err)
		}
		return id, nil // the groups stay none
	}
	if ui.Subject != id.Subject { // Core 5.3.2: the answer must be about the same subject
		return nil, refused("the SSO provider's userinfo is about another subject than its ID token")
	}
	var all map[string]any
	if err := ui.Claims(&all); err != nil {
		return nil, refused("the SSO provider's userinfo is malformed: %v", err)
	}
	if len(id.Names) == 0 {
		id.Email, _ = all["email"].(string)
		id.Names = namesOf(all)
	}
	if id.Groups == nil {
		id.Groups = groupsOf(all[c.GroupsClaim])
	}
	return id, nil
}

func oauthConfig(c *store.SSOConfig, prov *oidc.Provider, redirectURI string) *oauth2.Config {
	ep := prov.Endpoint()
	// client_secret_basic is OpenID Connect's default; a provider that
	// offers only client_secret_post gets the secret in the form. (oauth2's
	// auto-detection takes the device grant's "authorization_pending" for
	// a refused header and switches to the form.)
	ep.AuthStyle = oauth2.AuthStyleInHeader
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if prov.Claims(&meta) == nil && !slices.Contains(meta.Methods, "client_secret_basic") && slices.Contains(meta.Methods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: ep, RedirectURL: redirectURI, Scopes: c.Scopes}
}

// Identity is who the provider says signed in.
type Identity struct {
	Issuer, Subject string
	// Names are the pamd user names to try, best first: preferred_username,
	// the email, the email's local part.
	Names    []string
	Email    string
	Groups   []string
	AMR      []string
	AuthTime time.Time
}

// verify checks an ID token (signature by the provider's keys, issuer,
// audience, expiry; then the nonce) and reads its claims.
func (s *Service) verify(ctx context.Context, c *store.SSOConfig, v *oidc.IDTokenVerifier, raw, nonce string) (*Identity, error) {
	idt, err := v.Verify(oidc.ClientContext(ctx, s.http), raw)
	if err != nil {
		return nil, refused("the SSO provider's ID token was refused: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, refused("the SSO provider's ID token was refused: its nonce is not this login's")
	}
	var std struct {
		Email    string   `json:"email"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
	}
	var all map[string]any
	if err := idt.Claims(&std); err != nil {
		return nil, refused("the SSO provider's ID token has malformed claims: %v", err)
	}
	if err := idt.Claims(&all); err != nil {
		return nil, refused("the SSO provider's ID token has malformed claims: %v", err)
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return nil, refused("the SSO provider's ID token has no usable subject")
	}
	id := &Identity{Issuer: idt.Issuer, Subject: idt.Subject, Email: std.Email, AMR: std.AMR, Groups: groupsOf(all[c.GroupsClaim])}
	if std.AuthTime > 0 {
		id.AuthTime = time.Unix(std.AuthTime, 0).UTC()
	}
	id.Names = namesOf(all)
	return id, nil
}

// namesOf is the pamd user names claims offer, best first:
// preferred_username, the email, the email's local part.
func namesOf(claims map[string]any) []string {
	pu, _ := claims["preferred_username"].(string)
	email, _ := claims["email"].(string)
	var names []string
	for _, n := range []string{pu, email, localPart(email)} {
		if n != "" && api.ValidName("user", n) == nil {
			names = append(names, n)
		}
	}
	return names
}

// groupsOf reads a groups claim: a list of strings, or one string.
func groupsOf(v any) []string {
	var out []string
	switch g := v.(type) {
	case string:
		out = append(out, g)
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && len(s) <= 256 {
				out = append(out, s)
			}
		}
	}
	if len(out) > 1000 {
		out = out[:1000]
	}
	return out
}

func localPart(email string) string {
	if i := strings.IndexByte(email, '@'); i > 0 {
		return email[:i]
	}
	return ""
}

// checkLoopbackRedirect holds the CLI's redirect to RFC 8252's loopback
// form: http on 127.0.0.1 or [::1], a port, the path /callback.
func checkLoopbackRedirect(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") || u.Port() == "" ||
		u.Path != "/callback" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return api.Errorf(http.StatusBadRequest, "redirect URI: want http://127.0.0.1:PORT/callback (a loopback redirect of pamd login)")
	}
	return nil
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// BindingOf is what a pending console login keeps of its browser cookie.
func BindingOf(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// printableText cuts a provider's text to n bytes of printable ASCII: it
// goes to a person's screen and the audit log.
func printableText(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
