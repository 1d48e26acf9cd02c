package servertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/internal/leaktest"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/proxy/local"
	"github.com/pamd/pamd/proxy/proxytest"
	"github.com/pamd/pamd/server"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// AdminPassword is the admin's password in every environment.
const AdminPassword = "servertest-admin-password-1"

// GatewayName is the name of the environment's gateway.
const GatewayName = "local"

// Options change what New starts. The zero value is the default.
type Options struct {
	// Server, when set, edits the server's Config before it starts
	// (DataDir, Listen and AdminPassword are set already).
	Server func(*server.Config)
	// Gateway, when set, edits the gateway's Config before it starts.
	Gateway func(*gateway.Config)
	// NoGateway starts no gateway (GatewayName is then not enrolled).
	NoGateway bool
	// EnrollWithToken enrolls the gateway as an operator does: a token from
	// the API, then gateway.Run with Token over HTTPS. By default it is
	// enrolled in process as pamd dev does (Server.EnrollLocal).
	EnrollWithToken bool
	// Logs, when set, receives the server's and gateway's logs (text, debug).
	Logs io.Writer
}

// Env is a running server, its admin client and its gateway.
type Env struct {
	Server      *server.Server
	URL         string // https://127.0.0.1:PORT
	Addr        string // 127.0.0.1:PORT, the tunnel's address
	Fingerprint string // the CA fingerprint clients pin
	DataDir     string
	Client      *apiclient.Client // logged in as admin
	Gateway     string            // GatewayName, or "" with NoGateway
	// GatewayConfig is the configuration the gateway last ran with (its
	// DataDir, and Token or Identity as it enrolled).
	GatewayConfig gateway.Config

	t       testing.TB
	cfg     server.Config
	ctx     context.Context // the environment's: the gateway and tunnels
	cancel  context.CancelFunc
	stop    context.CancelFunc // the server's
	served  chan error
	gwStop  context.CancelFunc
	gwDone  chan error
	mu      sync.Mutex
	closers []func()
}

// envs counts the environments alive in this process: the leak check is
// only meaningful when one ran alone.
var envs atomic.Int32

// New starts an environment with the default options.
func New(t testing.TB) *Env { return NewWith(t, Options{}) }

// NewWith starts an environment; everything stops when the test ends.
func NewWith(t testing.TB, o Options) *Env {
	t.Helper()
	envs.Add(1)
	before := leaktest.Snapshot()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.Logs != nil {
		logger = slog.New(slog.NewTextHandler(o.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := server.Config{DataDir: filepath.Join(dir, "server"), Listen: "127.0.0.1:0", AdminPassword: AdminPassword, Logger: logger, Out: io.Discard}
	if o.Server != nil {
		o.Server(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{DataDir: cfg.DataDir, t: t, cfg: cfg, ctx: ctx, cancel: cancel}
	t.Cleanup(func() { e.close(before) })
	e.startServer(t)
	e.Client = e.Login(t, "admin", AdminPassword)
	if !o.NoGateway {
		e.startGateway(t, filepath.Join(dir, "gateway"), logger, o)
	}
	return e
}

// startServer starts the server on its data dir, on a new port the first
// time and on the same port after that.
func (e *Env) startServer(t testing.TB) {
	t.Helper()
	srv, err := server.New(e.cfg)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	listen := "127.0.0.1:0"
	if e.Addr != "" {
		listen = e.Addr
	}
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", listen); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		srv.Store().Close()
		t.Fatalf("servertest: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	e.Server, e.Addr, e.Fingerprint = srv, ln.Addr().String(), srv.CAFingerprint()
	e.URL = "https://" + e.Addr
	e.stop, e.served = stop, make(chan error, 1)
	go func() { e.served <- srv.Serve(ctx, ln) }()
}

// RestartServer stops the server (the gateway and tunnels see their
// connections drop) and starts it again on the same data dir and port.
// The clients made so far keep working: tokens live in the data file.
func (e *Env) RestartServer(t testing.TB) {
	t.Helper()
	if err := e.stopServer(); err != nil {
		t.Fatalf("servertest: stopping the server: %v", err)
	}
	e.startServer(t)
}

func (e *Env) stopServer() error {
	if e.served == nil {
		return nil
	}
	e.stop()
	err := <-e.served
	e.served = nil
	return err
}

func (e *Env) startGateway(t testing.TB, dir string, logger *slog.Logger, o Options) {
	t.Helper()
	cfg := gateway.Config{DataDir: dir, Version: "servertest", Logger: logger, RecordBatchDelay: 10 * time.Millisecond}
	if o.EnrollWithToken {
		var tok api.GatewayTokenResponse
		e.Do(t, e.Client, "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: GatewayName}, &tok)
		cfg.Token = tok.Token
	} else {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		certPEM, _, err := e.Server.EnrollLocal(GatewayName, key.Public())
		if err != nil {
			t.Fatalf("servertest: enroll the gateway: %v", err)
		}
		keyPEM, err := pki.EncodeKey(key)
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		cfg.Identity = &gateway.Identity{Name: GatewayName, ServerURL: e.URL, Fingerprint: e.Fingerprint, CertPEM: certPEM, KeyPEM: keyPEM}
		if err := cfg.Identity.Save(dir); err != nil {
			t.Fatalf("servertest: %v", err)
		}
	}
	if o.Gateway != nil {
		o.Gateway(&cfg)
	}
	e.runGateway(cfg)
	e.Gateway = GatewayName
	e.WaitGateway(t, true)
}

func (e *Env) runGateway(cfg gateway.Config) {
	ctx, stop := context.WithCancel(e.ctx)
	e.GatewayConfig, e.gwStop, e.gwDone = cfg, stop, make(chan error, 1)
	go func() { e.gwDone <- gateway.Run(ctx, cfg) }()
}

// RestartGateway stops the gateway, lets edit change a copy of its
// configuration (edit may be nil), and runs it again without waiting for it
// to connect. It returns what the stopped gateway's Run returned.
func (e *Env) RestartGateway(edit func(*gateway.Config)) error {
	err := e.StopGateway()
	cfg := e.GatewayConfig
	if edit != nil {
		edit(&cfg)
	}
	e.runGateway(cfg)
	return err
}

// GatewayExit waits up to d for the gateway's Run to return by itself and
// returns its error; the test fails if it is still running then.
func (e *Env) GatewayExit(t testing.TB, d time.Duration) error {
	t.Helper()
	if e.gwStop == nil {
		t.Fatal("servertest: no gateway is running")
	}
	select {
	case err := <-e.gwDone:
		e.gwStop()
		e.gwStop = nil
		return err
	case <-time.After(d):
		t.Fatalf("servertest: the gateway still runs after %v", d)
		return nil
	}
}

// WaitGateway waits (up to 10 s) until the gateway is online, or offline.
func (e *Env) WaitGateway(t testing.TB, online bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); e.Server.GatewayOnline(GatewayName) != online; {
		if time.Now().After(deadline) {
			t.Fatalf("servertest: gateway %s online=%v after 10s, want %v", GatewayName, !online, online)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StopGateway stops the gateway and waits for it to return; it returns
// what gateway.Run returned.
func (e *Env) StopGateway() error {
	if e.gwStop == nil {
		return nil
	}
	e.gwStop()
	err := <-e.gwDone
	e.gwStop = nil
	return err
}

// Stop stops the gateway and the server and returns what they returned.
// The test's cleanup does it too; calling it earlier is allowed.
func (e *Env) Stop() error {
	e.cancel()
	gwErr := e.StopGateway()
	return errors.Join(e.stopServer(), gwErr)
}

func (e *Env) close(before map[string]string) {
	defer envs.Add(-1)
	e.mu.Lock()
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	if err := e.Stop(); err != nil {
		e.t.Errorf("servertest: stopping: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(e.DataDir, "master.key"))
	if err == nil {
		var k []byte
		if k, err = parseKey(key); err == nil {
			err = storetest.CheckFile(filepath.Join(e.DataDir, "pamd.db"), k)
		}
	}
	if err != nil {
		e.t.Errorf("servertest: the data file after the test: %v", err)
	}
	if envs.Load() > 1 {
		return // another environment runs in parallel: its goroutines are not ours to judge
	}
	if left := leaktest.Leaked(before, 5*time.Second); len(left) > 0 {
		e.t.Errorf("servertest: after the environment stopped, %s", leaktest.Report(left))
	}
}

// onClose runs fn when the test ends, before the server stops.
func (e *Env) onClose(fn func()) {
	e.mu.Lock()
	e.closers = append(e.closers, fn)
	e.mu.Unlock()
}

// Login logs in as name and returns a client with the token.
func (e *Env) Login(t testing.TB, name, password string) *apiclient.Client {
	t.Helper()
	c, err := e.TryLogin(name, password)
	if err != nil {
		t.Fatalf("servertest: log in as %s: %v", name, err)
	}
	return c
}

// TryLogin is Login that returns the server's refusal (an *api.Error).
func (e *Env) TryLogin(name, password string) (*apiclient.Client, error) {
	c, err := e.NewClient("")
	if err != nil {
		return nil, err
	}
	var resp api.LoginResponse
	if err := c.Do(context.Background(), "POST", "/api/v1/auth/login", api.LoginRequest{Username: name, Password: password}, &resp); err != nil {
		return nil, err
	}
	c.Token = resp.Token
	return c, nil
}

// NewClient returns a client that pins the server's CA and holds token (may be "").
func (e *Env) NewClient(token string) (*apiclient.Client, error) {
	return apiclient.New(e.URL, e.Fingerprint, token)
}

// Status is the HTTP status of an error from Client.Do: 200 for none
// (whichever 2xx it was), 0 for an error that is not the server's answer.
func Status(err error) int {
	var ae *api.Error
	switch {
	case err == nil:
		return 200
	case errors.As(err, &ae):
		return ae.Status
	}
	return 0
}

// Do calls the API as c and fails the test on any error.
func (e *Env) Do(t testing.TB, c *apiclient.Client, method, path string, in, out any) {
	t.Helper()
	if err := c.Do(context.Background(), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// AddRole creates a role as admin.
func (e *Env) AddRole(t testing.TB, r api.Role) {
	t.Helper()
	e.Do(t, e.Client, "POST", "/api/v1/roles", r, nil)
}

// AddUser creates a user with roles, sets the password the user must
// choose at the first login, and returns a client logged in as the user
// and the password.
func (e *Env) AddUser(t testing.TB, name string, roles ...string) (*apiclient.Client, string) {
	t.Helper()
	var out api.CreateUserResponse
	e.Do(t, e.Client, "POST", "/api/v1/users", api.CreateUserRequest{Name: name, Roles: roles}, &out)
	c := e.Login(t, name, out.Password)
	own := name + "-servertest-password"
	e.Do(t, c, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: out.Password, New: own}, nil)
	return e.Login(t, name, own), own
}

// Echo starts an echo server (EchoServer) for the test.
func (e *Env) Echo(t testing.TB) *net.TCPAddr { return EchoServer(t) }

// EchoServer starts a TCP server on loopback that writes back what it
// reads (proxytest.Serve with proxytest.Echo), and returns its address.
// It and its connections stop when the test ends, before an Env made
// earlier in the test stops.
func EchoServer(t testing.TB) *net.TCPAddr {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", proxytest.Serve(t, proxytest.Echo))
	if err != nil {
		t.Fatalf("servertest: echo: %v", err)
	}
	return addr
}

// AddEchoResource adds a tcp resource named name on the gateway, pointing
// at a new echo server, with the account "any". It returns the echo
// server's address.
func (e *Env) AddEchoResource(t testing.TB, name string) *net.TCPAddr {
	t.Helper()
	addr := e.Echo(t)
	e.Do(t, e.Client, "POST", "/api/v1/resources", api.Resource{Name: name, Type: "tcp", Gateway: GatewayName, Host: addr.IP.String(), Port: addr.Port}, nil)
	e.Do(t, e.Client, "POST", "/api/v1/resources/"+name+"/accounts", api.CreateAccountRequest{Name: "any"}, nil)
	return addr
}

// Open asks for an access session as c and returns the grant.
func (e *Env) Open(t testing.TB, c *apiclient.Client, req api.CreateSessionRequest) *api.SessionGrant {
	t.Helper()
	var g api.SessionGrant
	e.Do(t, c, "POST", "/api/v1/sessions", req, &g)
	return &g
}

// Dial connects the session's tunnel to the server, as pamd connect does.
// The tunnel ends (and with it the session) when the test ends.
func (e *Env) Dial(t testing.TB, g *api.SessionGrant) *local.Tunnel {
	t.Helper()
	tun, err := local.Dial(e.ctx, local.Config{Server: e.Addr, Fingerprint: e.Fingerprint, SessionID: g.Session.ID, Credential: g.Credential})
	if err != nil {
		t.Fatalf("servertest: tunnel for session %s: %v", g.Session.ID, err)
	}
	e.onClose(tun.End)
	return tun
}

// Connect opens one connection to the session's resource over tun, as a
// client of pamd connect's port would; it is closed when the test ends.
func Connect(t testing.TB, tun *local.Tunnel) net.Conn {
	t.Helper()
	c, err := tun.Open()
	if err != nil {
		t.Fatalf("servertest: open a connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Echoes writes msg on c and fails the test unless the same comes back
// within 10 s.
func Echoes(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(got, []byte(msg)) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func parseKey(b []byte) ([]byte, error) {
	k, err := store.ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return k, nil
}
