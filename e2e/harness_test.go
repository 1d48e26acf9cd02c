package e2e

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pamd/pamd/proxy/proxytest"
)

var pamdBin string

func TestMain(m *testing.M) {
	if kind := os.Getenv("PAMD_E2E_HELPER"); kind != "" {
		runHelper(kind)
		return
	}
	dir, err := os.MkdirTemp("", "pamd-e2e-bin")
	if err != nil {
		panic(err)
	}
	pamdBin = filepath.Join(dir, "pamd")
	// The test hooks (PAMD_TEST_PAUSE_ROTATION, store's RewriteAuditEvent)
	// exist only with the failpoints tag; the release build has neither
	// (TestReleaseBinaryHasNoTestHooks).
	if err := buildPamd(pamdBin, "failpoints"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sweepStaleSystemUsers()
	defaultParallel()
	code := m.Run()
	removeSSHUser()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2eParallel is how many tests marked t.Parallel run at once when -parallel
// is not given. Go's default, GOMAXPROCS, is 2 on a 2-core machine, but the
// tests mostly wait (on child processes, the network, timers), so more of
// them at once finish sooner. Tests that measure time windows or resource
// use are not marked parallel: they run first, one at a time, before any
// parallel test starts. Tests that run at once share no file or port: each
// has its own ports (freePort), system users (sysusers_test.go) and, on the
// one SSH user they all log in as, an authorized keys file (sshKeys).
const e2eParallel = 8

func defaultParallel() {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", fmt.Sprint(e2eParallel))
	}
}

// buildPamd builds the binary from the tree as scripts/test does (static),
// with the given build tags.
func buildPamd(out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	build := exec.Command("go", append(args, "..")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building pamd (tags %q): %v\n%s", tags, err, out)
	}
	return nil
}

// TestReleaseBinaryHasNoTestHooks builds pamd as released (no build tags)
// and checks that neither test hook is in it: nothing reads
// PAMD_TEST_PAUSE_ROTATION, so no environment can park a rotation, and no
// code rewrites an audit event. The e2e binary (failpoints) is the control:
// the same checks find the hook there.
func TestReleaseBinaryHasNoTestHooks(t *testing.T) {
	t.Parallel()
	release := filepath.Join(t.TempDir(), "pamd")
	if err := buildPamd(release); err != nil {
		t.Fatal(err)
	}
	hooks := func(bin string) []string {
		t.Helper()
		raw, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, s := range []string{"PAMD_TEST_PAUSE_ROTATION", "rotation paused for a test"} {
			if bytes.Contains(raw, []byte(s)) {
				found = append(found, s)
			}
		}
		if hasSymbol(t, bin, "store.(*Tx).RewriteAuditEvent") {
			found = append(found, "store.(*Tx).RewriteAuditEvent")
		}
		return found
	}
	if got := hooks(release); len(got) > 0 {
		t.Fatalf("the release binary has test hooks: %q", got)
	}
	if got := hooks(pamdBin); len(got) == 0 {
		t.Fatal("the check finds no hook in the failpoints build either: it checks nothing")
	}
}

// hasSymbol says whether the binary's symbol table has a function whose
// name ends in name (go tool nm's view, read in process).
func hasSymbol(t *testing.T, bin, name string) bool {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatalf("symbols of %s: %v", bin, err)
	}
	return slices.ContainsFunc(syms, func(s elf.Symbol) bool { return strings.HasSuffix(s.Name, name) })
}

const adminPassword = "admin-e2e-password-1"

// proc is a pamd process whose output is kept for assertions.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuf
	stderr *syncBuf
	done   chan struct{}
	err    error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is one pamd deployment: a server process, a gateway process enrolled
// by token, and a CLI config dir logged in as admin.
type env struct {
	t         *testing.T
	dir       string
	addr      string // 127.0.0.1:port
	url       string
	fp        string
	configDir string
	server    *proc
	gateway   *proc
	// everything any pamd process printed, for the no-secret checks
	outputs []*proc
	mu      sync.Mutex
	// the TOTP secret pamd mfa enroll printed (enrollMFA)
	mfaSecret string
}

// portsGiven are the ports freePort returned in this run: the port is free
// when freePort closes its listener, and a test running in parallel must
// not be given it too before its process binds it.
var portsGiven struct {
	mu    sync.Mutex
	ports map[string]bool
}

func freePort(t testing.TB) string {
	portsGiven.mu.Lock()
	defer portsGiven.mu.Unlock()
	if portsGiven.ports == nil {
		portsGiven.ports = map[string]bool{}
	}
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !portsGiven.ports[addr] {
			portsGiven.ports[addr] = true
			return addr
		}
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer()
	e.login("admin", adminPassword)
	e.startGateway("gw1")
	return e
}

func (e *env) serverEnv() []string {
	// Scheduled and interrupted rotations are looked for every second.
	return []string{"PAMD_ADMIN_PASSWORD=" + adminPassword, "PAMD_ROTATION_CHECK=1s"}
}

func (e *env) startServer(extraEnv ...string) {
	e.t.Helper()
	e.server = e.start(append(e.serverEnv(), extraEnv...), "server", "--data-dir", filepath.Join(e.dir, "server"), "--listen", e.addr)
	e.waitFor("server ready", 15*time.Second, func() bool {
		c, err := net.Dial("tcp", e.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if e.fp == "" {
		e.waitFor("CA fingerprint in the server log", 5*time.Second, func() bool {
			_, after, ok := strings.Cut(e.server.stderr.String(), "ca_fingerprint=")
			if ok {
				e.fp = strings.Fields(after)[0]
			}
			return ok
		})
	}
}

func (e *env) stopServer() {
	e.t.Helper()
	e.server.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.server.done:
	case <-time.After(15 * time.Second):
		e.t.Fatal("server did not stop within 15 s of SIGTERM")
	}
}

func (e *env) startGateway(name string) {
	e.t.Helper()
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", name, "-o", "json")
	e.gateway = e.start(nil, "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw-"+name))
	e.waitGatewayOnline(name, 15*time.Second)
}

func (e *env) waitGatewayOnline(name string, within time.Duration) {
	e.t.Helper()
	e.waitFor("gateway "+name+" online", within, func() bool {
		var gws []struct {
			Name   string
			Online bool
		}
		out, _, err := e.run("", "gateways", "list", "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &gws) != nil {
			return false
		}
		for _, g := range gws {
			if g.Name == name && g.Online {
				return true
			}
		}
		return false
	})
}

// start runs a long-lived pamd process, stopped at the end of the test.
func (e *env) start(extraEnv []string, args ...string) *proc {
	e.t.Helper()
	p := &proc{stdout: &syncBuf{}, stderr: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(pamdBin, args...)
	p.cmd.Env = append(append(os.Environ(), "PAMD_CONFIG_DIR="+e.configDir), extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.outputs = append(e.outputs, p)
	e.mu.Unlock()
	e.t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("pamd %s stderr:\n%s", args[0], lastLines(p.stderr.String(), 30))
		}
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// run runs a short pamd command with stdin and returns its output.
func (e *env) run(stdin string, args ...string) (string, string, error) {
	return e.runEnv(nil, stdin, args...)
}

func (e *env) runEnv(extraEnv []string, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pamdBin, args...)
	cmd.Env = append(append(os.Environ(), "PAMD_CONFIG_DIR="+e.configDir), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	p := &proc{stdout: &syncBuf{}, stderr: &syncBuf{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	err := cmd.Run()
	e.mu.Lock()
	e.outputs = append(e.outputs, p)
	e.mu.Unlock()
	return p.stdout.String(), p.stderr.String(), err
}

// ok runs a pamd command that must succeed.
func (e *env) ok(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatalf("pamd %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fails runs a pamd command that must fail and returns its stderr.
func (e *env) fails(stdin string, args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(stdin, args...)
	if err == nil {
		e.t.Fatalf("pamd %s succeeded, want failure\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}

func (e *env) json(v any, args ...string) {
	e.t.Helper()
	out := e.ok("", args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("pamd %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (e *env) login(user, password string, extra ...string) {
	e.t.Helper()
	e.ok(password+"\n", append([]string{"login", "--server", e.url, "--user", user, "--password-stdin", "--ca-fingerprint", e.fp}, extra...)...)
}

func (e *env) waitFor(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connection is what pamd connect -o json prints when ready.
type connection struct {
	SessionID string    `json:"session_id"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	ExpiresAt time.Time `json:"expires_at"`
	proc      *proc
}

func (c *connection) addr() string { return net.JoinHostPort(c.Host, fmt.Sprint(c.Port)) }

// connect starts pamd connect and waits for its JSON line.
func (e *env) connect(target string, extra ...string) *connection {
	e.t.Helper()
	p := e.start(nil, append([]string{"connect", target, "-o", "json"}, extra...)...)
	var c connection
	e.waitFor("pamd connect ready", 20*time.Second, func() bool {
		select {
		case <-p.done:
			e.t.Fatalf("pamd connect exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		line, _, ok := strings.Cut(p.stdout.String(), "\n")
		return ok && json.Unmarshal([]byte(line), &c) == nil
	})
	c.proc = p
	return &c
}

// allOutput is everything every pamd process of this env printed.
func (e *env) allOutput() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, p := range e.outputs {
		b.WriteString(p.stdout.String())
		b.WriteString(p.stderr.String())
	}
	return b.String()
}

// echoServer is the target: it echoes every connection and half-closes
// after the client does.
func echoServer(t testing.TB) string {
	return proxytest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 256<<10)
		io.CopyBuffer(c, c, buf)
		c.(*net.TCPConn).CloseWrite()
	})
}

// addEcho registers a tcp resource for an echo server and an account on it.
func (e *env) addEcho(name, account, password string, extra ...string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(echoServer(e.t))
	e.ok("", "resources", "add", "--type", "tcp", "--name", name, "--gateway", "gw1", "--host", host, "--port", port)
	e.ok(password+"\n", append([]string{"accounts", "add", name + "/" + account, "--username", "svc", "--password-stdin"}, extra...)...)
}

// readUntilClosed reads from c until EOF or error and reports how long
// after start the connection was cut.
func waitClosed(c net.Conn, within time.Duration) (time.Duration, error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(within))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return time.Since(start), fmt.Errorf("connection still open after %s", within)
			}
			return time.Since(start), nil
		}
	}
}

func scanLines(r io.Reader, fn func(string) bool) {
	s := bufio.NewScanner(r)
	for s.Scan() && fn(s.Text()) {
	}
}
