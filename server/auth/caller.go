package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// Caller is the authenticated user of a request.
type Caller struct {
	User      *store.User
	Roles     []*store.Role
	TokenHash string
	Source    string // the client's address, without the port
	// ViaCookie is set for the console's cookie: a page's scripts must not
	// be handed what the cookie's HttpOnly keeps from them.
	ViaCookie bool
	// MFAAt is when the SSO provider checked a second factor of the login
	// that made the token (zero: none).
	MFAAt time.Time
}

// Has says whether the caller holds the named role.
func (c *Caller) Has(role string) bool { return slices.Contains(c.User.Roles, role) }

// IsAdmin and CanRead are the built-in roles' rights.
func (c *Caller) IsAdmin() bool { return c.Has("admin") }
func (c *Caller) CanRead() bool { return c.Has("admin") || c.Has("auditor") }

// The levels a route asks of its caller.
type Level int

const (
	Public Level = iota
	Authed       // any logged-in user
	Reader       // admin or auditor
	Admin
)

type callerKey struct{}

// WithCaller is ctx carrying c, for CallerOf.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf is the caller Authorize found for r, or nil on a public route.
func CallerOf(r *http.Request) *Caller { c, _ := r.Context().Value(callerKey{}).(*Caller); return c }

// SourceOf is a request's client address, without the port.
func SourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authorize finds the caller of r by its bearer token or console cookie
// (whose state changes must carry the CSRF header), and checks it may use
// a route of level. A public route has no caller.
func (s *Service) Authorize(r *http.Request, level Level) (*Caller, error) {
	if level == Public {
		return nil, nil
	}
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	viaCookie := false
	if !ok || secret == "" {
		ck, err := r.Cookie(SessionCookie)
		if err != nil || ck.Value == "" {
			return nil, api.Errorf(http.StatusUnauthorized, "not logged in: run pamd login")
		}
		secret, viaCookie = ck.Value, true
	}
	now := time.Now()
	c := &Caller{TokenHash: HashToken(secret), Source: SourceOf(r), ViaCookie: viaCookie}
	if viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := s.checkCSRF(r, c.TokenHash); err != nil {
			return nil, err
		}
	}
	err := s.st.View(func(tx *store.Tx) error {
		t, err := tx.Token(c.TokenHash)
		if err != nil {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeTokenExpired, Message: "token is not valid (revoked or unknown): run pamd login"}
		}
		if now.After(t.ExpiresAt) {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeTokenExpired, Message: "token expired: run pamd login"}
		}
		u, err := tx.User(t.UserID)
		if err != nil || u.Disabled {
			return api.Errorf(http.StatusUnauthorized, "user is disabled or removed")
		}
		c.User, c.MFAAt = u, t.MFAAt
		for _, name := range u.Roles {
			if role, err := tx.RoleByName(name); err == nil {
				c.Roles = append(c.Roles, role)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.User.MustChangePassword && r.URL.Path != "/api/v1/auth/password" && r.URL.Path != "/api/v1/auth/whoami" && r.URL.Path != "/api/v1/auth/logout" {
		return nil, api.Errorf(http.StatusForbidden, "change the one-time password first: pamd passwd")
	}
	switch {
	case level == Reader && !c.CanRead(), level == Admin && !c.IsAdmin():
		s.trail.Event(c.User.Name, "api.denied", r.Method+" "+r.URL.Path, "failure", c.Source, "")
		return nil, api.Errorf(http.StatusForbidden, "permission denied: your roles (%s) do not allow this", strings.Join(c.User.Roles, ", "))
	}
	return c, nil
}

// The web console authenticates with a cookie holding an API token
// (HttpOnly, Secure, SameSite=Strict). Its name has the __Host- prefix, so
// a browser takes it only when it is Secure, has Path=/ and no Domain: a
// neighbouring subdomain or a plain-HTTP page cannot plant or shadow it.
// Because a browser sends cookies on its own, every state change made with
// the cookie must also carry the X-CSRF-Token header, an HMAC of the token
// that the page learns only from the login answer or /api/v1/ui/session.
const (
	SessionCookie = "__Host-pamd_session"
	csrfHeader    = "X-CSRF-Token"
)

// csrfKey is kept in the store so tokens stay valid across restarts.
func (s *Service) loadCSRFKey() error {
	return s.st.Update(func(tx *store.Tx) error {
		k, err := tx.Secret("csrf-key")
		if errors.Is(err, store.ErrNotFound) {
			k = []byte(RandomSecret(32))
			err = tx.PutSecret("csrf-key", k)
		}
		s.csrfKey = k
		return err
	})
}

// CSRFFor is the CSRF token of the API token with the given hash.
func (s *Service) CSRFFor(tokenHash string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(tokenHash))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) checkCSRF(r *http.Request, tokenHash string) error {
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRFFor(tokenHash))) != 1 {
		return api.Errorf(http.StatusForbidden, "missing or wrong CSRF token: reload the page")
	}
	return nil
}
