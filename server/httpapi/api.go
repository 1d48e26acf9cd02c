package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/server/hub"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/server/requests"
	"github.com/pamd/pamd/server/rotation"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/server/sso"
	"github.com/pamd/pamd/server/webterm"
	"github.com/pamd/pamd/store"
)

// API answers /api/v1: the routes, their authorisation and their handlers.
type API struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	trail audit.Trail
	auth  *auth.Service
	live  *sessions.Live
	hub   *hub.Hub
	kinds *kind.Set
	rot   *rotation.Rotator
	ca    *ca.Authority
	reqs  *requests.Service
	// serving ends when the server's shutdown stops the handlers (see
	// untilShutdown); nil: never.
	serving context.Context
	ready   readiness
	routes  []string // as Handler registered them
}

// Routes are the API's patterns ("GET /api/v1/users"), for contract tests.
func (s *API) Routes() []string { return s.routes }

// Config is what the API needs of the server.
type Config struct {
	Store     *store.Store
	Log       *slog.Logger
	Auth      *auth.Service
	Sessions  *sessions.Live
	Gateways  *hub.Hub
	Kinds     *kind.Set
	Rotations *rotation.Rotator
	CA        *ca.Authority
	Requests  *requests.Service
	SSO       *sso.Service // nil: no SSO

	Version             string
	PublicURL           string // the URL users reach the server by, if set
	CAFingerprint       string // what clients pin at start (after a rotation of the server CA: ca.ServerPins)
	GatewayCertLifetime time.Duration
	// Listening says whether the tunnel listener accepts (for /readyz).
	Listening func() bool
	Metrics   *metrics.M
	// Terminal serves the console's web terminals (nil: none).
	Terminal *webterm.Terminal
	// ServerCARotated re-issues the server's certificate from its new CA
	// once a rotation of the server CA completed (nil: nothing to do).
	ServerCARotated func() error
}

// New is the API.
func New(cfg Config) *API {
	return &API{cfg: cfg, st: cfg.Store, log: cfg.Log, trail: audit.Trail{St: cfg.Store, Log: cfg.Log}, auth: cfg.Auth,
		live: cfg.Sessions, hub: cfg.Gateways, kinds: cfg.Kinds, rot: cfg.Rotations, ca: cfg.CA,
		reqs: cfg.Requests}
}

// SetServing gives the context the server's shutdown cancels once its
// grace is over; call it before serving.
func (s *API) SetServing(ctx context.Context) { s.serving = ctx }

// untilShutdown is r's context without the cancellation when the client
// goes away: it ends only when the server's shutdown stops its handlers.
func (s *API) untilShutdown(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	if s.serving != nil {
		stop := context.AfterFunc(s.serving, cancel)
		return ctx, func() { stop(); cancel() }
	}
	return ctx, cancel
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Handler is the API's routes, with uiHandler serving everything
// outside /api/.
func (s *API) Handler(uiHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	s.routes = nil
	h := func(pattern string, level auth.Level, fn handler) {
		mux.Handle(pattern, s.wrap(level, fn))
		s.routes = append(s.routes, pattern)
	}

	h("GET /api/v1/info", auth.Public, s.handleInfo)
	h("POST /api/v1/auth/login", auth.Public, s.handleLogin)
	h("POST /api/v1/gateways/enroll", auth.Public, s.handleEnroll)
	h("POST /api/v1/ui/login", auth.Public, s.handleUILogin)
	h("GET /api/v1/ui/session", auth.Authed, s.handleUISession)
	h("POST /api/v1/ui/logout", auth.Authed, s.handleUILogout)
	h("GET /api/v1/sso/status", auth.Public, s.handleSSOStatus)
	h("GET /api/v1/sso/login", auth.Public, s.handleSSOLogin)
	h("GET "+sso.ConsolePath, auth.Public, s.handleSSOCallback)
	h("POST /api/v1/sso/cli/begin", auth.Public, s.handleSSOCLIBegin)
	h("POST /api/v1/sso/cli/finish", auth.Public, s.handleSSOCLIFinish)
	h("POST /api/v1/sso/cli/device", auth.Public, s.handleSSODevice)
	h("POST /api/v1/sso/cli/device/poll", auth.Public, s.handleSSODevicePoll)
	h("GET /api/v1/sso", auth.Admin, s.handleGetSSO)
	h("PUT /api/v1/sso", auth.Admin, s.handleSetSSO)
	h("DELETE /api/v1/sso", auth.Admin, s.handleDisableSSO)

	h("POST /api/v1/auth/logout", auth.Authed, s.handleLogout)
	h("GET /api/v1/auth/whoami", auth.Authed, s.handleWhoami)
	h("POST /api/v1/auth/password", auth.Authed, s.handleChangePassword)
	h("POST /api/v1/mfa/enroll", auth.Authed, s.handleMFAEnroll)
	h("POST /api/v1/mfa/confirm", auth.Authed, s.handleMFAConfirm)

	h("GET /api/v1/users", auth.Reader, s.handleListUsers)
	h("POST /api/v1/users", auth.Admin, s.handleCreateUser)
	h("POST /api/v1/users/{name}/disable", auth.Admin, s.handleSetDisabled(true))
	h("POST /api/v1/users/{name}/enable", auth.Admin, s.handleSetDisabled(false))
	h("POST /api/v1/users/{name}/reset-mfa", auth.Admin, s.handleResetMFA)
	h("PATCH /api/v1/users/{name}", auth.Admin, s.handleUpdateUser)
	h("DELETE /api/v1/users/{name}", auth.Admin, s.handleDeleteUser)
	h("POST /api/v1/users/{name}/reset-password", auth.Admin, s.handleResetPassword)
	h("POST /api/v1/users/{name}/sync", auth.Admin, s.handleSyncUser)
	h("GET /api/v1/users/{name}/tokens", auth.Authed, s.handleListTokens)
	h("DELETE /api/v1/users/{name}/tokens", auth.Authed, s.handleRevokeTokens)

	h("GET /api/v1/roles", auth.Reader, s.handleListRoles)
	h("POST /api/v1/roles", auth.Admin, s.handleCreateRole)
	h("DELETE /api/v1/roles/{name}", auth.Admin, s.handleDeleteRole)
	h("PATCH /api/v1/roles/{name}", auth.Admin, s.handleUpdateRole)

	h("GET /api/v1/gateways", auth.Reader, s.handleListGateways)
	h("POST /api/v1/gateways/tokens", auth.Admin, s.handleGatewayToken)
	h("POST /api/v1/gateways/{name}/revoke", auth.Admin, s.handleRevokeGateway)
	h("PATCH /api/v1/gateways/{name}", auth.Admin, s.handleUpdateGateway)
	h("DELETE /api/v1/gateways/{name}", auth.Admin, s.handleRemoveGateway)

	h("GET /api/v1/kinds", auth.Authed, s.handleKinds)
	h("GET /api/v1/resources", auth.Reader, s.handleListResources)
	h("POST /api/v1/resources", auth.Admin, s.handleCreateResource)
	h("GET /api/v1/resources/{name}", auth.Reader, s.handleGetResource)
	h("DELETE /api/v1/resources/{name}", auth.Admin, s.handleDeleteResource)
	h("PATCH /api/v1/resources/{name}", auth.Admin, s.handleUpdateResource)
	h("PATCH /api/v1/resources/{name}/accounts/{account}", auth.Admin, s.handleUpdateAccount)
	h("POST /api/v1/resources/{name}/accounts/{account}/rotate", auth.Admin, s.handleRotateAccount)
	h("POST /api/v1/resources/{name}/trust-host-key", auth.Admin, s.handleTrustHostKey)
	h("POST /api/v1/resources/{name}/test", auth.Admin, s.handleTestResource)
	h("GET /api/v1/resources/ssh/{id}/ssh-ca-public-key", auth.Authed, s.handleSSHCAPublicKey)
	h("GET /api/v1/resources/ssh/{id}/ssh-ca-setup", auth.Authed, s.handleSSHCASetup)
	h("GET /api/v1/resources/{name}/accounts", auth.Reader, s.handleListAccounts)
	h("POST /api/v1/resources/{name}/accounts", auth.Admin, s.handleCreateAccount)
	h("DELETE /api/v1/resources/{name}/accounts/{account}", auth.Admin, s.handleDeleteAccount)

	h("GET /api/v1/catalog", auth.Authed, s.handleCatalog)
	h("POST /api/v1/sessions", auth.Authed, s.handleCreateSession)
	h("GET /api/v1/sessions", auth.Authed, s.handleListSessions)
	h("GET /api/v1/sessions/{id}", auth.Authed, s.handleGetSession)
	h("POST /api/v1/sessions/{id}/terminate", auth.Authed, s.handleTerminateSession)
	h("GET /api/v1/sessions/{id}/records", auth.Authed, s.handleSessionRecords)
	h("GET /api/v1/sessions/{id}/asciicast", auth.Authed, s.handleAsciicast)
	h("GET /api/v1/sessions/{id}/terminal", auth.Authed, s.handleTerminal)
	h("GET /api/v1/sessions/{id}/watch", auth.Reader, s.handleWatch)

	h("POST /api/v1/requests", auth.Authed, s.handleCreateRequest)
	h("GET /api/v1/requests", auth.Authed, s.handleListRequests)
	h("GET /api/v1/requests/{id}", auth.Authed, s.handleGetRequest)
	h("POST /api/v1/requests/{id}/approve", auth.Authed, s.handleApproveRequest)
	h("POST /api/v1/requests/{id}/deny", auth.Authed, s.handleDenyRequest)
	h("POST /api/v1/requests/{id}/cancel", auth.Authed, s.handleCancelRequest)
	h("POST /api/v1/requests/{id}/revoke", auth.Admin, s.handleRevokeRequest)

	h("GET /api/v1/audit", auth.Reader, s.handleListAudit)
	h("GET /api/v1/audit/export", auth.Reader, s.handleExportAudit)
	h("GET /api/v1/audit/verify", auth.Reader, s.handleVerifyAudit)
	h("GET /api/v1/audit/head", auth.Reader, s.handleAuditHead)
	h("GET /api/v1/backup", auth.Admin, s.handleBackup)
	h("GET /api/v1/ca/{name}", auth.Authed, s.handleCACertificate)
	h("GET /api/v1/ca/{name}/crl", auth.Authed, s.handleCACRL)
	h("POST /api/v1/ca/{name}/revoke", auth.Admin, s.handleCARevoke)
	h("GET /api/v1/ca/rotations", auth.Reader, s.handleCARotations)
	h("POST /api/v1/ca/{name}/rotate/{step}", auth.Admin, s.handleCARotate)
	h("GET /pki/{file}", auth.Public, s.handlePKIFile)
	h("GET /api/v1/resources/mssql/{id}/ad-setup", auth.Admin, s.handleADSetup)
	h("GET /healthz", auth.Public, s.handleHealthz)
	h("GET /readyz", auth.Public, s.handleReadyz)
	if s.cfg.Metrics != nil {
		h("GET /metrics", auth.Reader, s.handleMetrics)
	}

	mux.Handle("/api/", s.wrap(auth.Public, func(http.ResponseWriter, *http.Request) error {
		return api.Errorf(http.StatusNotFound, "no such API endpoint")
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

func (s *API) wrap(level auth.Level, fn handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		s.setPinHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		c, err := s.auth.Authorize(r, level)
		if err == nil {
			if c != nil {
				r = r.WithContext(auth.WithCaller(r.Context(), c))
			}
			err = fn(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
		s.accessLog(r, c, w.status, time.Since(start))
	})
}

// accessLog writes one line per request: the route's pattern (never the
// path, which may hold a name a user typed, nor the query, the body or a
// token), the status, the user and the time taken. Probes log at debug.
func (s *API) accessLog(r *http.Request, c *auth.Caller, status int, d time.Duration) {
	level := slog.LevelInfo
	if r.Pattern == "GET /healthz" || r.Pattern == "GET /readyz" {
		level = slog.LevelDebug
	}
	user := "-"
	if c != nil {
		user = c.User.Name
	}
	if status == 0 {
		status = http.StatusOK
	}
	s.log.Log(r.Context(), level, "api", "route", r.Pattern, "status", status, "user", user, "source", auth.SourceOf(r),
		"ms", float64(d.Microseconds())/1000)
}

// statusWriter remembers the status a handler wrote, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = api.Errorf(http.StatusRequestEntityTooLarge, "request body too large")
	case errors.Is(err, store.ErrNotFound):
		ae = api.Errorf(http.StatusNotFound, "%s", strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, store.ErrExists):
		ae = api.Errorf(http.StatusConflict, "%s", err.Error())
	case isCannotWrite(err):
		s.log.Error("the store cannot write", "method", r.Method, "route", r.Pattern, "err", err)
		ae = &api.Error{Status: http.StatusInsufficientStorage, Code: api.CodeCannotWrite, Message: cannotWrite}
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = api.Errorf(http.StatusInternalServerError, "internal error (see the server log)")
	}
	if ae.Status == 0 {
		ae.Status = http.StatusInternalServerError
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, ae.Status, ae)
}

// cannotWrite is what a user is told when the store refuses a write.
const cannotWrite = "the server cannot write its data (disk full?); an operator must free space on the server's data disk"

func isCannotWrite(err error) bool { return errors.Is(err, store.ErrCannotWrite) }

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
		return api.Errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return api.Errorf(http.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}
