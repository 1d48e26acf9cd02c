package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/server/httpapi"
	"github.com/pamd/pamd/server/hub"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/server/relay"
	accessrequests "github.com/pamd/pamd/server/requests"
	"github.com/pamd/pamd/server/rotation"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/server/sso"
	"github.com/pamd/pamd/server/webterm"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/ui"
)

// Server is a running control plane: the composition of the store, the
// CAs, authentication, the live sessions, the gateway hub, rotations, the
// client relay and the HTTP API, on one port.
type Server struct {
	cfg  Config
	log  *slog.Logger
	st   *store.Store
	ca   *ca.Authority
	cert tls.Certificate
	pin  string // the CA fingerprint clients pin
	// served is the certificate new handshakes get: cert, or the one
	// ReloadTLS read since.
	served  atomic.Pointer[tls.Certificate]
	auth    *auth.Service
	hub     *hub.Hub
	live    *sessions.Live
	rot     *rotation.Rotator
	access  *accessrequests.Service // just-in-time access requests
	relay   *relay.Relay
	api     *httpapi.API
	metrics *metrics.M
	http    *http.Server
	conns   chan net.Conn // handshaken HTTP connections for http.Server
	lim     limits
	srcs    *sourceLimiter // connections not yet authenticated, per source

	// wg counts the goroutines Serve starts (the HTTP server, the session
	// and rotation loops, each connection's dispatch and serving); Serve
	// waits for them before it closes the store. Each Add happens before
	// the Wait: in Serve, in the accept loop (done before the Wait), or in
	// track under mu while closing is false.
	wg sync.WaitGroup
	// reqs counts the HTTP handlers running (see requests); serving is
	// their base context, cancelled once the shutdown's grace is over.
	reqs    requests
	serving context.Context
	mu      sync.Mutex
	tunnels map[net.Conn]struct{} // open client and gateway connections
	closing bool
	// listening is set while the accept loop runs (for /readyz).
	listening atomic.Bool
}

// New opens (or initialises) the data dir. It does not listen yet.
func New(cfg Config) (*Server, error) { return open(cfg, defaultLimits()) }

// open is New with the limits given (tests tighten them).
func open(cfg Config, lim limits) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	key, err := masterKey(&cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "pamd.db"), key)
	if err != nil {
		return nil, err
	}
	s, err := compose(cfg, st, lim)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// compose builds the server's parts on an open store, each given what it
// uses of the others.
func compose(cfg Config, st *store.Store, lim limits) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, st: st, tunnels: map[net.Conn]struct{}{}, lim: lim}
	s.metrics = metrics.New(metrics.State{LiveSessions: func() int { return s.live.Count() }, Gateways: func() []metrics.Gateway { return s.hub.States() }})
	st.Observe(s.metrics.StoreTransaction)
	var err error
	if s.ca, err = ca.Load(st); err != nil {
		return nil, err
	}
	if s.cert, s.pin, err = s.ca.ServerCertificate(cfg.TLSCert, cfg.TLSKey, cfg.Listen, cfg.PublicURL); err != nil {
		return nil, err
	}
	s.served.Store(&s.cert)
	s.ca.Serving(s.cert.Certificate)
	s.auth, err = auth.New(st, s.log, auth.Config{DataDir: cfg.DataDir, AdminPassword: cfg.AdminPassword, KeepAdminPassword: cfg.KeepAdminPassword, Out: cfg.Out, Metrics: s.metrics})
	if err != nil {
		return nil, err
	}
	s.hub = hub.New(hub.Config{Store: st, Log: s.log, CA: s.ca, CertLifetime: cfg.GatewayCertLifetime, Streams: s.lim.gatewayStreams,
		OnConnect: func() { s.rot.Poke() }, Metrics: s.metrics, DBClientCRLURL: dbClientCRLURL(cfg)})
	kinds := newKinds(kindEnv{ca: s.ca, hub: s.hub})
	s.live = sessions.New(st, s.log, s.hub)
	if err := s.live.Restore(); err != nil {
		return nil, err
	}
	s.access = accessrequests.New(accessrequests.Config{Store: st, Log: s.log, Sessions: s.live, Webhook: cfg.RequestWebhook})
	s.rot = rotation.New(rotation.Config{Store: st, Log: s.log, Kinds: kinds, Gateways: s.hub, LiveOn: s.live.OnAccount, Check: cfg.RotationCheck, Metrics: s.metrics})
	s.relay = relay.New(relay.Config{Store: st, Log: s.log, Sessions: s.live, Gateways: s.hub, Kinds: kinds,
		AuthTimeout: s.lim.authTimeout, Streams: s.lim.clientStreams, Metrics: s.metrics})
	s.api = httpapi.New(httpapi.Config{Store: st, Log: s.log, Auth: s.auth, Sessions: s.live, Gateways: s.hub, Kinds: kinds,
		Rotations: s.rot, CA: s.ca, Requests: s.access, Version: cfg.Version, PublicURL: cfg.PublicURL, CAFingerprint: s.pin,
		GatewayCertLifetime: cfg.GatewayCertLifetime, Listening: s.listening.Load, Metrics: s.metrics, ServerCARotated: s.reissueCertificate,
		SSO:      sso.New(sso.Config{Store: st, Log: s.log}),
		Terminal: webterm.New(webterm.Config{Store: st, Log: s.log, Relay: s.relay, Kinds: kinds, PublicURL: cfg.PublicURL})})
	return s, nil
}

// masterKey takes the key from the environment, or the key file, creating
// the file only for a data dir that has no data file yet.
func masterKey(cfg *Config) ([]byte, error) {
	if cfg.MasterKey != "" {
		k, err := store.ParseMasterKey(cfg.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("PAMD_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	if _, err := os.Stat(cfg.MasterKeyFile); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "pamd.db")); err == nil {
			return nil, fmt.Errorf("server: %s holds data but the master key file %s is missing; give the key with --master-key-file or PAMD_MASTER_KEY", cfg.DataDir, cfg.MasterKeyFile)
		}
	}
	k, created, err := store.LoadOrCreateMasterKey(cfg.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if created {
		cfg.Logger.Info("generated master key; keep a copy of it apart from the data", "file", cfg.MasterKeyFile)
	}
	return k, nil
}

// CAFingerprint is the fingerprint clients and gateways pin.
func (s *Server) CAFingerprint() string {
	pin, _ := s.ca.ServerPins()
	return pin
}

// reissueCertificate serves a certificate from the server CA that a
// rotation made current: new handshakes get it, open connections and
// tunnels keep theirs. With the operator's certificate (--tls-cert) there
// is nothing to do: the server CA signs nothing clients see.
func (s *Server) reissueCertificate() error {
	if s.cfg.TLSCert != "" {
		return nil
	}
	c, pin, err := s.ca.ServerCertificate("", "", s.cfg.Listen, s.cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("the server CA rotation completed, but no certificate from the new CA could be issued (%w): the server goes on serving the old one and advertising both pins; restart pamd server", err)
	}
	s.served.Store(&c)
	s.ca.Serving(c.Certificate) // only now are the pins advertised without the old CA
	s.log.Info("server certificate re-issued from the rotated server CA", "ca_fingerprint", pin)
	return nil
}

// Store gives pamd dev access for enrolling its in-process gateway.
func (s *Server) Store() *store.Store { return s.st }

func (s *Server) tlsConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.served.Load(), nil },
		NextProtos:     []string{pki.ALPNHTTP, pki.ALPNTunnel, pki.ALPNGateway},
	}
	// The tunnels are pamd's own clients at both ends: TLS 1.3 only (the
	// browser and API side keeps 1.2 for older tools).
	tunnel := base.Clone()
	tunnel.MinVersion = tls.VersionTLS13
	gw := tunnel.Clone()
	gw.ClientAuth = tls.RequireAndVerifyClientCert
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			for _, p := range hi.SupportedProtos {
				switch p {
				case pki.ALPNGateway:
					// Read at each handshake: a rotation of the gateway CA
					// changes what gateway certificates chain to.
					g := gw.Clone()
					g.ClientCAs = s.ca.GatewayClientCAs()
					return g, nil
				case pki.ALPNTunnel:
					return tunnel, nil
				}
			}
			return base, nil
		},
	}
}

// Serve accepts on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var anchor *audit.Anchor
	var writeAnchor func(string) error
	if s.cfg.AuditAnchor != "" {
		anchor = &audit.Anchor{St: s.st, Log: s.log, Dest: s.cfg.AuditAnchor, Every: s.cfg.AuditAnchorEvery}
		var err error
		if writeAnchor, err = anchor.Open(); err != nil {
			s.st.Close()
			return fmt.Errorf("--audit-anchor %s: %w", s.cfg.AuditAnchor, err)
		}
	}
	tlsLn := &batchListener{Listener: ln, cfg: s.tlsConfig()}
	s.conns = make(chan net.Conn)
	hl := &chanListener{conns: s.conns, addr: ln.Addr(), done: make(chan struct{})}
	s.srcs = newSourceLimiter(s.lim.perSource)
	s.http = s.newHTTPServer(s.reqs.wrap(s.api.Handler(ui.Handler())))
	// Requests run under reqCtx: handlers waiting on a gateway (a
	// rotation, a probe) stop once the shutdown's grace is over.
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	s.serving = reqCtx
	s.api.SetServing(reqCtx)
	s.http.BaseContext = func(net.Listener) context.Context { return reqCtx }
	s.relay.Start()
	stopOps, err := s.serveOps()
	if err != nil {
		cancelReqs()
		s.relay.Stop()
		s.st.Close()
		return err
	}
	defer stopOps()
	s.goTracked(func() { s.http.Serve(hl) })
	s.goTracked(func() { s.live.Run(ctx) })
	s.goTracked(func() { s.rot.Run(ctx, reqCtx) })
	s.goTracked(func() { s.access.Run(ctx) })
	if anchor != nil {
		s.goTracked(func() { anchor.Run(ctx, writeAnchor) })
	}

	acceptDone := make(chan struct{})
	s.listening.Store(true)
	go func() { // Serve waits for it (acceptDone) before anything else stops
		defer close(acceptDone)
		defer s.listening.Store(false)
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				s.log.Warn("accept", "err", err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			release, ok := s.srcs.acquire(c.RemoteAddr())
			if !ok {
				s.log.Debug("connection refused: too many unauthenticated connections from its source", "remote", c.RemoteAddr().String(), "limit", s.lim.perSource)
				c.Close()
				continue
			}
			s.goTracked(func() { s.dispatch(ctx, c.(*tls.Conn), release) })
		}
	}()
	s.log.Info("pamd server listening", "addr", ln.Addr().String(), "ca_fingerprint", s.pin, "version", s.cfg.Version)

	<-ctx.Done()
	s.log.Info("shutting down")
	ln.Close()
	<-acceptDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.http.Shutdown(shutdownCtx)
	cancelReqs()
	s.reqs.closeAndWait()
	hl.Close()
	s.mu.Lock()
	s.closing = true
	for c := range s.tunnels {
		c.Close() // yamux sends GoAway on close; streams end with EOF on the far side
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.relay.Stop() // the connections' last records, now that none is open
	return s.st.Close()
}

// serveOps serves --metrics-listen, when set, until the returned stop.
func (s *Server) serveOps() (stop func(), err error) {
	if s.cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", s.cfg.MetricsListen, err)
	}
	hs := &http.Server{Handler: s.api.OpsHandler(), ReadHeaderTimeout: s.lim.httpReadHeader, IdleTimeout: s.lim.httpIdle,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	s.log.Info("metrics and health listening", "addr", ln.Addr().String())
	return func() { hs.Close(); <-done }, nil
}

// ReloadTLS reads --tls-cert/--tls-key again (on SIGHUP): new handshakes
// get the new certificate, open connections and tunnels keep theirs. A
// pair that does not load is refused and the served one stays. Clients pin
// the last certificate of the chain; a chain ending elsewhere is served
// but logged, since pinned clients will refuse it.
func (s *Server) ReloadTLS() error {
	if s.cfg.TLSCert == "" {
		return errors.New("the server serves a certificate of its own CA (no --tls-cert): nothing to reload")
	}
	c, pin, err := s.ca.ServerCertificate(s.cfg.TLSCert, s.cfg.TLSKey, s.cfg.Listen, s.cfg.PublicURL)
	if err != nil {
		s.log.Error("TLS certificate not reloaded; the served one stays", "err", err)
		return err
	}
	s.served.Store(&c)
	if pin != s.pin {
		s.log.Warn("the reloaded chain ends at another certificate than the one clients pin: they refuse it until they log in again with the new fingerprint",
			"pinned", s.pin, "now", pin)
	}
	s.log.Info("TLS certificate reloaded", "file", s.cfg.TLSCert)
	return nil
}

// goTracked runs fn in a goroutine Serve waits for before the store closes.
func (s *Server) goTracked(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// requests counts the HTTP handlers running. http.Server.Shutdown stops
// waiting for them after its grace; Serve then waits here, so none uses the
// store after it closes. A request arriving after closeAndWait is refused.
type requests struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (q *requests) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			http.Error(w, "pamd server shutting down", http.StatusServiceUnavailable)
			return
		}
		q.wg.Add(1)
		q.mu.Unlock()
		defer q.wg.Done()
		h.ServeHTTP(w, r)
	})
}

func (q *requests) closeAndWait() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}

// newHTTPServer is the API and console's server with its limits.
// ReadTimeout bounds reading a request's header and body (bodies are at
// most 1 MiB); the server lifts it once the body is read, so a handler that
// runs for minutes after (a rotation waits for its gateway) is not cut.
// There is no WriteTimeout for the same reason: it would run from the end of
// the request to the end of the response.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.lim.httpReadHeader,
		ReadTimeout:       s.lim.httpRead,
		IdleTimeout:       s.lim.httpIdle,
		MaxHeaderBytes:    s.lim.httpMaxHeader,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// dispatch finishes the handshake and hands the connection to its role.
// release gives back the connection's unauthenticated slot: after the
// handshake for HTTP (each request authenticates) and gateways (mutual
// TLS), once the first stream authenticates for pamd connect.
func (s *Server) dispatch(ctx context.Context, c *tls.Conn, release func()) {
	defer release()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.HandshakeContext(ctx); err != nil {
		s.log.Debug("tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	switch c.ConnectionState().NegotiatedProtocol {
	case pki.ALPNTunnel:
		s.track(c, func() { s.relay.Serve(ctx, c, release) })
	case pki.ALPNGateway:
		release()
		s.track(c, func() { s.hub.Serve(ctx, c) })
	default:
		release()
		select {
		case s.conns <- c:
		case <-ctx.Done():
			c.Close()
		}
	}
}

func (s *Server) track(c net.Conn, serve func()) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.tunnels[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.tunnels, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	serve()
}

// chanListener hands already-handshaken connections to http.Server.
type chanListener struct {
	conns chan net.Conn
	addr  net.Addr
	once  sync.Once
	done  chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// GatewayOnline reports whether the named gateway is connected.
func (s *Server) GatewayOnline(name string) bool { return s.hub.Online(name) }

// SetPassword sets a user's password directly (pamd dev --admin-password).
func (s *Server) SetPassword(name, password string) error { return s.auth.SetPassword(name, password) }

// EnrollLocal enrolls pamd dev's in-process gateway without a token.
func (s *Server) EnrollLocal(name string, pub any) (certPEM, caPEM []byte, err error) {
	return s.api.EnrollLocal(name, pub)
}

// batchListener is tls.NewListener over proxy.BatchConn, so tunnel
// connections send each frame's TLS records in one write.
type batchListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(proxy.NewBatchConn(c), l.cfg), nil
}
