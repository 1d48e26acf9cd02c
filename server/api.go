package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// httpError carries an HTTP status with a message fit for the caller.
func httpError(status int, format string, args ...any) *api.Error {
	return &api.Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// caller is the authenticated user of a request.
type caller struct {
	user      *store.User
	roles     []*store.Role
	tokenHash string
	source    string
}

func (c *caller) has(role string) bool {
	for _, r := range c.user.Roles {
		if r == role {
			return true
		}
	}
	return false
}
func (c *caller) isAdmin() bool { return c.has("admin") }
func (c *caller) canRead() bool { return c.has("admin") || c.has("auditor") }

type ctxKey struct{}

func callerOf(r *http.Request) *caller { c, _ := r.Context().Value(ctxKey{}).(*caller); return c }

type handler func(w http.ResponseWriter, r *http.Request) error

// access levels for routes
const (
	public = iota
	authed // any logged-in user
	reader // admin or auditor
	admin
)

func (s *Server) routes(uiHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, level int, fn handler) { mux.Handle(pattern, s.wrap(level, fn)) }

	h("GET /api/v1/info", public, s.handleInfo)
	h("POST /api/v1/auth/login", public, s.handleLogin)
	h("POST /api/v1/gateways/enroll", public, s.handleEnroll)
	h("POST /api/v1/ui/login", public, s.handleUILogin)
	h("GET /api/v1/ui/session", authed, s.handleUISession)
	h("POST /api/v1/ui/logout", authed, s.handleUILogout)

	h("POST /api/v1/auth/logout", authed, s.handleLogout)
	h("GET /api/v1/auth/whoami", authed, s.handleWhoami)
	h("POST /api/v1/auth/password", authed, s.handleChangePassword)
	h("POST /api/v1/mfa/enroll", authed, s.handleMFAEnroll)
	h("POST /api/v1/mfa/confirm", authed, s.handleMFAConfirm)

	h("GET /api/v1/users", reader, s.handleListUsers)
	h("POST /api/v1/users", admin, s.handleCreateUser)
	h("POST /api/v1/users/{name}/disable", admin, s.handleSetDisabled(true))
	h("POST /api/v1/users/{name}/enable", admin, s.handleSetDisabled(false))
	h("POST /api/v1/users/{name}/reset-mfa", admin, s.handleResetMFA)
	h("GET /api/v1/users/{name}/tokens", authed, s.handleListTokens)
	h("DELETE /api/v1/users/{name}/tokens", authed, s.handleRevokeTokens)

	h("GET /api/v1/roles", reader, s.handleListRoles)
	h("POST /api/v1/roles", admin, s.handleCreateRole)
	h("DELETE /api/v1/roles/{name}", admin, s.handleDeleteRole)

	h("GET /api/v1/gateways", reader, s.handleListGateways)
	h("POST /api/v1/gateways/tokens", admin, s.handleGatewayToken)
	h("POST /api/v1/gateways/{name}/revoke", admin, s.handleRevokeGateway)

	h("GET /api/v1/kinds", authed, s.handleKinds)
	h("GET /api/v1/resources", reader, s.handleListResources)
	h("POST /api/v1/resources", admin, s.handleCreateResource)
	h("GET /api/v1/resources/{name}", reader, s.handleGetResource)
	h("DELETE /api/v1/resources/{name}", admin, s.handleDeleteResource)
	h("PATCH /api/v1/resources/{name}", admin, s.handleUpdateResource)
	h("PATCH /api/v1/resources/{name}/accounts/{account}", admin, s.handleUpdateAccount)
	h("POST /api/v1/resources/{name}/accounts/{account}/rotate", admin, s.handleRotateAccount)
	h("POST /api/v1/resources/{name}/trust-host-key", admin, s.handleTrustHostKey)
	h("POST /api/v1/resources/{name}/test", admin, s.handleTestResource)
	h("GET /api/v1/resources/ssh/{id}/ssh-ca-public-key", authed, s.handleSSHCAPublicKey)
	h("GET /api/v1/resources/ssh/{id}/ssh-ca-setup", authed, s.handleSSHCASetup)
	h("GET /api/v1/resources/{name}/accounts", reader, s.handleListAccounts)
	h("POST /api/v1/resources/{name}/accounts", admin, s.handleCreateAccount)
	h("DELETE /api/v1/resources/{name}/accounts/{account}", admin, s.handleDeleteAccount)

	h("GET /api/v1/catalog", authed, s.handleCatalog)
	h("POST /api/v1/sessions", authed, s.handleCreateSession)
	h("GET /api/v1/sessions", authed, s.handleListSessions)
	h("GET /api/v1/sessions/{id}", authed, s.handleGetSession)
	h("POST /api/v1/sessions/{id}/terminate", authed, s.handleTerminateSession)
	h("GET /api/v1/sessions/{id}/records", authed, s.handleSessionRecords)
	h("GET /api/v1/sessions/{id}/asciicast", authed, s.handleAsciicast)

	h("GET /api/v1/audit", reader, s.handleListAudit)
	h("GET /api/v1/audit/verify", reader, s.handleVerifyAudit)

	mux.Handle("/api/", s.wrap(public, func(http.ResponseWriter, *http.Request) error {
		return httpError(http.StatusNotFound, "no such API endpoint")
	}))
	mux.Handle("/", uiHandler)
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// Styles may be inline: the terminal renderer (xterm.js) sets them. Scripts may not.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) wrap(level int, fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		c, err := s.authorize(r, level)
		if err == nil {
			if c != nil {
				r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
			}
			err = fn(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) authorize(r *http.Request, level int) (*caller, error) {
	if level == public {
		return nil, nil
	}
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	viaCookie := false
	if !ok || secret == "" {
		ck, err := r.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return nil, httpError(http.StatusUnauthorized, "not logged in: run pamd login")
		}
		secret, viaCookie = ck.Value, true
	}
	now := time.Now()
	c := &caller{tokenHash: hashToken(secret), source: sourceOf(r)}
	if viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := s.checkCSRF(r, c.tokenHash); err != nil {
			return nil, err
		}
	}
	err := s.st.View(func(tx *store.Tx) error {
		t, err := tx.Token(c.tokenHash)
		if err != nil {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeTokenExpired, Message: "token is not valid (revoked or unknown): run pamd login"}
		}
		if now.After(t.ExpiresAt) {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeTokenExpired, Message: "token expired: run pamd login"}
		}
		u, err := tx.User(t.UserID)
		if err != nil || u.Disabled {
			return httpError(http.StatusUnauthorized, "user is disabled or removed")
		}
		c.user = u
		for _, name := range u.Roles {
			if role, err := tx.RoleByName(name); err == nil {
				c.roles = append(c.roles, role)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.user.MustChangePassword && r.URL.Path != "/api/v1/auth/password" && r.URL.Path != "/api/v1/auth/whoami" && r.URL.Path != "/api/v1/auth/logout" {
		return nil, httpError(http.StatusForbidden, "change the one-time password first: pamd passwd")
	}
	switch {
	case level == reader && !c.canRead(), level == admin && !c.isAdmin():
		s.auditEvent(c.user.Name, "api.denied", r.Method+" "+r.URL.Path, "failure", c.source, "")
		return nil, httpError(http.StatusForbidden, "permission denied: your roles (%s) do not allow this", strings.Join(c.user.Roles, ", "))
	}
	return c, nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = httpError(http.StatusRequestEntityTooLarge, "request body too large")
	case errors.Is(err, store.ErrNotFound):
		ae = httpError(http.StatusNotFound, "%s", strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, store.ErrExists):
		ae = httpError(http.StatusConflict, "%s", err.Error())
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = httpError(http.StatusInternalServerError, "internal error (see the server log)")
	}
	if ae.Status == 0 {
		ae.Status = http.StatusInternalServerError
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, ae.Status, ae)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, so a typo in a field name does not pass silently.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return httpError(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return httpError(http.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditEvent appends an event in its own transaction. Use appendAudit inside
// an Update when the event belongs with a state change.
func (s *Server) auditEvent(actor, action, target, outcome, source, detail string) {
	err := s.st.Update(func(tx *store.Tx) error {
		return appendAudit(tx, actor, action, target, outcome, source, detail)
	})
	if err != nil {
		s.log.Error("audit append failed", "action", action, "err", err)
	}
}

func appendAudit(tx *store.Tx, actor, action, target, outcome, source, detail string) error {
	return tx.AppendAudit(&store.AuditEvent{
		Time: time.Now().UTC(), Actor: actor, Action: action, Target: target,
		Outcome: outcome, Source: source, Detail: detail,
	})
}

// validName keeps names simple enough for globs, URLs and shells.
func validName(kind, name string) error {
	if name == "" || len(name) > 64 {
		return httpError(http.StatusBadRequest, "%s name must be 1 to 64 characters", kind)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return httpError(http.StatusBadRequest, "%s name %q: use letters, digits, '-', '_' and '.'", kind, name)
		}
	}
	return nil
}
