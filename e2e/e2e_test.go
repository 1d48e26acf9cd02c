package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/pquerna/otp/totp"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

type sessionDetail struct {
	ID          string
	User        string
	Resource    string
	Account     string
	Reason      string
	Active      bool
	EndReason   string    `json:"end_reason"`
	ExpiresAt   time.Time `json:"expires_at"`
	CreatedAt   time.Time `json:"created_at"`
	Connections []struct {
		ClientAddr string    `json:"client_addr"`
		BytesUp    int64     `json:"bytes_up"`
		BytesDown  int64     `json:"bytes_down"`
		EndedAt    time.Time `json:"ended_at"`
		Error      string
	}
}

// transfer sends n pseudo-random bytes through addr to an echo server,
// half-closes, and checks the echo's SHA-256 matches what was sent.
func transfer(t testing.TB, addr string, n int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := sha256.New()
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 256<<10)
		for left := n; left > 0; {
			chunk := buf[:min(int64(len(buf)), left)]
			for i := range chunk {
				chunk[i] = byte(r.Uint32())
			}
			sent.Write(chunk)
			if _, err := c.Write(chunk); err != nil {
				return
			}
			left -= int64(len(chunk))
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	m, err := io.Copy(got, c)
	if err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if m != n {
		t.Fatalf("echoed %d bytes, sent %d", m, n)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("echoed bytes differ from those sent (checksum mismatch)")
	}
}

func TestDataPath100MBWithChecksumAndByteCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "target-secret-1")
	c := e.connect("echo/raw", "--reason", "e2e bulk")
	const size = 100 << 20
	transfer(t, c.addr(), size)

	var s sessionDetail
	e.waitFor("connection record closed", 5*time.Second, func() bool {
		e.json(&s, "sessions", "show", c.SessionID, "-o", "json")
		return len(s.Connections) == 1 && !s.Connections[0].EndedAt.IsZero()
	})
	cn := s.Connections[0]
	if cn.BytesUp != size || cn.BytesDown != size {
		t.Fatalf("connection record: up %d down %d, want %d each", cn.BytesUp, cn.BytesDown, size)
	}
	if s.User != "admin" || s.Resource != "echo" || s.Account != "raw" || s.Reason != "e2e bulk" || !s.Active {
		t.Fatalf("session record: %+v", s)
	}
	if cn.ClientAddr == "" {
		t.Fatal("connection record has no client address")
	}
	// Ctrl-C on connect ends the session on the server.
	c.proc.cmd.Process.Signal(os.Interrupt)
	<-c.proc.done
	e.json(&s, "sessions", "show", c.SessionID, "-o", "json")
	if s.Active || !strings.Contains(s.EndReason, "ended by admin") {
		t.Fatalf("after Ctrl-C: active=%v end reason %q", s.Active, s.EndReason)
	}
}

func TestExpiryCutsLiveConnectionsWithinOneSecond(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts a 1 s window.
	e := newEnv(t)
	e.addEcho("echo", "raw", "pw-expiry-1")
	c := e.connect("echo/raw", "--duration", "3s")
	conn, err := net.Dial("tcp", c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c.ExpiresAt)) // the expiry is what is tested
	cut, err := waitClosed(conn, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cut > time.Second {
		t.Fatalf("connection cut %s after expiry, want within 1 s", cut)
	}
	select {
	case <-c.proc.done:
	case <-time.After(3 * time.Second):
		t.Fatal("pamd connect still running after expiry")
	}
	if c.proc.err == nil || !strings.Contains(c.proc.stderr.String(), "expired") {
		t.Fatalf("connect exit %v, stderr %q: want non-zero and a message saying the session expired", c.proc.err, c.proc.stderr.String())
	}
	// A new connection to the expired session is refused by the server too.
	var s sessionDetail
	e.json(&s, "sessions", "show", c.SessionID, "-o", "json")
	if s.Active || s.EndReason != "expired" {
		t.Fatalf("session after expiry: active %v reason %q", s.Active, s.EndReason)
	}
	t.Logf("connection cut %s after expiry", cut.Round(time.Millisecond))
}

func TestTerminateCutsLiveConnectionsWithinOneSecond(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts a 1 s window.
	e := newEnv(t)
	e.addEcho("echo", "raw", "pw-terminate-1")
	c := e.connect("echo/raw")
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("x"))
		io.ReadFull(conn, make([]byte, 1))
		conns = append(conns, conn)
	}
	start := time.Now()
	e.ok("", "sessions", "terminate", c.SessionID)
	for _, conn := range conns {
		if _, err := waitClosed(conn, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("connections cut %s after terminate, want within 1 s", d)
	}
	<-c.proc.done
	if c.proc.err == nil || !strings.Contains(c.proc.stderr.String(), "terminated by admin") {
		t.Fatalf("connect: exit %v stderr %q", c.proc.err, c.proc.stderr.String())
	}
	out := e.ok("", "audit", "list", "--action", "session", "-o", "json")
	if !strings.Contains(out, "session.terminate") || !strings.Contains(out, "session.end") {
		t.Fatalf("audit lacks terminate/end events:\n%s", out)
	}
}

func TestServerRestartGatewayAndConnectReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "pw-restart-1")
	c := e.connect("echo/raw")
	transfer(t, c.addr(), 1<<20)

	e.stopServer()
	if !strings.Contains(e.server.stderr.String(), "shutting down") {
		t.Fatal("server did not log a graceful shutdown")
	}
	restart := time.Now()
	e.startServer()
	e.waitGatewayOnline("gw1", 5*time.Second)
	t.Logf("gateway back %s after the server restarted", time.Since(restart).Round(time.Millisecond))
	// The running connect reconnects and its session still works.
	e.waitFor("connect to carry traffic again", 10*time.Second, func() bool {
		conn, err := net.Dial("tcp", c.addr())
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		conn.Write([]byte("again"))
		buf := make([]byte, 5)
		_, err = io.ReadFull(conn, buf)
		return err == nil && string(buf) == "again"
	})
	transfer(t, c.addr(), 1<<20)
}

func TestGatewayEnrollmentTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The token newEnv used is spent: a second gateway with it is refused.
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", "gw2", "-o", "json")
	e.ok("", "gateways", "list") // fine
	p := e.start(nil, "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw2a"))
	e.waitGatewayOnline("gw2", 10*time.Second)
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	_, errOut, err := e.run("", "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw2b"))
	if err == nil || !strings.Contains(errOut, "already used") {
		t.Fatalf("reused token: err %v, stderr %q", err, errOut)
	}
	e.json(&tok, "gateways", "token", "--name", "gw3", "--ttl", "1s", "-o", "json")
	time.Sleep(1500 * time.Millisecond) // the token's 1 s lifetime is what is tested
	_, errOut, err = e.run("", "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw3"))
	if err == nil || !strings.Contains(errOut, "expired") {
		t.Fatalf("expired token: err %v, stderr %q", err, errOut)
	}
	_, errOut, err = e.run("", "gateway", "--token", "pamdgw1.garbage", "--data-dir", filepath.Join(e.dir, "gw4"))
	if err == nil || !strings.Contains(errOut, "not a pamd gateway enrollment token") {
		t.Fatalf("garbage token: err %v, stderr %q", err, errOut)
	}
	// A later start needs only the data dir.
	p = e.start(nil, "gateway", "--data-dir", filepath.Join(e.dir, "gw2a"))
	e.waitGatewayOnline("gw2", 10*time.Second)
	audit := e.ok("", "audit", "list", "--action", "gateway.enroll", "-o", "json")
	if strings.Count(audit, `"failure"`) < 2 {
		t.Fatalf("refused enrollments not audited:\n%s", audit)
	}
}

func TestLoginThrottleAndGenericError(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): the throttled tries must come within the 1 s wait of the fifth failure.
	e := newEnv(t)
	out := e.ok("", "users", "add", "carol", "--role", "user", "-o", "json")
	var u struct{ Password string }
	json.Unmarshal([]byte(out), &u)

	wrongPw := e.fails("wrong-password-x\n", "login", "--server", e.url, "--user", "carol", "--password-stdin", "--ca-fingerprint", e.fp)
	unknown := e.fails("whatever-password\n", "login", "--server", e.url, "--user", "nobody", "--password-stdin", "--ca-fingerprint", e.fp)
	if wrongPw != unknown {
		t.Fatalf("errors differ between wrong password and unknown user:\n%q\n%q", wrongPw, unknown)
	}
	for i := 0; i < 4; i++ {
		e.fails("wrong-password-x\n", "login", "--server", e.url, "--user", "carol", "--password-stdin", "--ca-fingerprint", e.fp)
		e.fails("wrong-password-x\n", "login", "--server", e.url, "--user", "nobody", "--password-stdin", "--ca-fingerprint", e.fp)
	}
	// Five failures from this address: even the right password waits now,
	// and an unknown name gets the same answer as a real one.
	held := e.fails(u.Password+"\n", "login", "--server", e.url, "--user", "carol", "--password-stdin", "--ca-fingerprint", e.fp)
	heldUnknown := e.fails("whatever-password\n", "login", "--server", e.url, "--user", "nobody", "--password-stdin", "--ca-fingerprint", e.fp)
	if !strings.Contains(held, "too many failed logins: try again in") || !strings.Contains(heldUnknown, "too many failed logins") {
		t.Fatalf("throttled logins: %q / %q", held, heldUnknown)
	}
	// Nobody else is locked out: the admin logs in from the same address.
	e.login("admin", adminPassword)
	audit := e.ok("", "audit", "list", "--user", "carol", "-o", "json")
	if strings.Count(audit, "wrong password") != 5 {
		t.Fatalf("want 5 audited failures for carol:\n%s", audit)
	}
	// The wait ends by itself (the 1 s wait is what is tested).
	time.Sleep(1500 * time.Millisecond)
	e.login("carol", u.Password)
}

func TestMFAEnrollmentAndMFARequiredAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "mfa", "pw-mfa-1", "--require-mfa")
	out := e.ok("", "users", "add", "dave", "--role", "admin", "-o", "json")
	var u struct{ Password string }
	json.Unmarshal([]byte(out), &u)
	e.login("dave", u.Password)
	e.ok(u.Password+"\ndave-own-password-1\n", "passwd", "--stdin")

	// Without MFA enrolled, the account refuses access and says what to do.
	errOut := e.fails("", "connect", "echo/mfa")
	if !strings.Contains(errOut, "pamd mfa enroll") {
		t.Fatalf("no-MFA access error: %q", errOut)
	}

	t0 := time.Now()
	code := func(offset time.Duration) string {
		c, _ := totp.GenerateCode(secretOf(t, e), t0.Add(offset))
		return c
	}
	enrollMFA(t, e, "dave-own-password-1", t0.Add(-30*time.Second))

	// Login now requires the code.
	errOut = e.fails("dave-own-password-1\n", "login", "--server", e.url, "--user", "dave", "--password-stdin", "--ca-fingerprint", e.fp)
	if !strings.Contains(errOut, "MFA") {
		t.Fatalf("login without code: %q", errOut)
	}
	e.login("dave", "dave-own-password-1", "--totp", code(0))
	// The same code cannot log in twice.
	errOut = e.fails("dave-own-password-1\n", "login", "--server", e.url, "--user", "dave", "--password-stdin", "--ca-fingerprint", e.fp, "--totp", code(0))
	if !strings.Contains(errOut, "already used") {
		t.Fatalf("replayed code: %q", errOut)
	}
	e.login("dave", "dave-own-password-1", "--totp", code(30*time.Second))

	// The MFA account needs a fresh code for the session.
	errOut = e.fails("", "connect", "echo/mfa")
	if !strings.Contains(errOut, "requires a fresh MFA code") {
		t.Fatalf("connect without code: %q", errOut)
	}
	errOut = e.fails("", "connect", "echo/mfa", "--totp", code(30*time.Second))
	if !strings.Contains(errOut, "already used") {
		t.Fatalf("connect with a used code: %q", errOut)
	}
	t.Log("waiting for the next TOTP step")
	time.Sleep(time.Until(t0.Truncate(30 * time.Second).Add(30 * time.Second))) // TOTP steps are 30 s of real time
	c := e.connect("echo/mfa", "--totp", code(60*time.Second))
	transfer(t, c.addr(), 1000)
	audit := e.ok("", "audit", "list", "--action", "access.deny", "-o", "json")
	if !strings.Contains(audit, "wrong or reused MFA code") {
		t.Fatalf("MFA failure not audited:\n%s", audit)
	}
	// Codes cannot be guessed without limit: after five wrong ones the
	// next try waits, whatever the code.
	for i := 0; i < 5; i++ {
		if out := e.fails("", "connect", "echo/mfa", "--totp", code(time.Duration(10+i)*time.Minute)); !strings.Contains(out, "already used") {
			t.Fatalf("wrong code %d: %q", i, out)
		}
	}
	if out := e.fails("", "connect", "echo/mfa", "--totp", code(90*time.Second)); !strings.Contains(out, "too many failed MFA codes") {
		t.Fatalf("sixth code: %q", out)
	}
}

func secretOf(t *testing.T, e *env) string { return e.mfaSecret }

// enrollMFA runs pamd mfa enroll, reads the secret it prints, and answers
// with the code for at.
func enrollMFA(t *testing.T, e *env, password string, at time.Time) {
	cmd := exec.Command(pamdBin, "mfa", "enroll", "--password-stdin")
	cmd.Env = append(os.Environ(), "PAMD_CONFIG_DIR="+e.configDir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, password+"\n")
	var rest bytes.Buffer
	scanLines(stdout, func(line string) bool {
		rest.WriteString(line + "\n")
		if s, ok := strings.CutPrefix(line, "secret: "); ok {
			e.mfaSecret = s
			c, _ := totp.GenerateCode(s, at)
			io.WriteString(stdin, c+"\n")
		}
		return true
	})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mfa enroll: %v\n%s%s", err, rest.String(), stderr.String())
	}
	if !strings.Contains(rest.String(), "otpauth://totp/pamd:") || !strings.Contains(rest.String(), "█") {
		t.Fatalf("enroll output lacks the URI or the QR code:\n%s", rest.String())
	}
}

func TestRolesDenyByDefaultReasonAndDurationCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("prod-db", "readonly", "pw-roles-1")
	e.ok("pw-roles-2\n", "accounts", "add", "prod-db/admin", "--username", "root", "--password-stdin")
	e.ok("", "roles", "add", "readers", "--allow", "prod-*/readonly", "--max-duration", "30m", "--require-reason")
	out := e.ok("", "users", "add", "erin", "--role", "readers", "-o", "json")
	var u struct{ Password string }
	json.Unmarshal([]byte(out), &u)
	e.login("erin", u.Password)
	if errOut := e.fails("", "ls"); !strings.Contains(errOut, "pamd passwd") {
		t.Fatalf("one-time password not enforced: %q", errOut)
	}
	e.ok(u.Password+"\nerin-own-password-1\n", "passwd", "--stdin")

	ls := e.ok("", "ls")
	if !strings.Contains(ls, "prod-db/readonly") || strings.Contains(ls, "prod-db/admin") {
		t.Fatalf("ls shows the wrong targets:\n%s", ls)
	}
	if errOut := e.fails("", "connect", "prod-db/admin", "--reason", "x"); !strings.Contains(errOut, "denied") {
		t.Fatalf("access outside the role: %q", errOut)
	}
	if errOut := e.fails("", "connect", "prod-db/readonly"); !strings.Contains(errOut, "needs a reason") {
		t.Fatalf("missing reason: %q", errOut)
	}
	c := e.connect("prod-db/readonly", "--reason", "ticket 42", "--duration", "8h")
	if d := time.Until(c.ExpiresAt); d > 30*time.Minute || d < 29*time.Minute {
		t.Fatalf("session lasts %s, want capped at the role's 30m", d)
	}
	// A user cannot administer or read others' sessions.
	if errOut := e.fails("", "users", "list"); !strings.Contains(errOut, "permission denied") {
		t.Fatalf("user listing users: %q", errOut)
	}
	var mine []sessionDetail
	e.json(&mine, "sessions", "list", "-o", "json")
	if len(mine) != 1 || mine[0].User != "erin" {
		t.Fatalf("user sees sessions %+v", mine)
	}
	// An auditor reads but cannot change.
	e.login("admin", adminPassword)
	out = e.ok("", "users", "add", "fred", "--role", "auditor", "-o", "json")
	json.Unmarshal([]byte(out), &u)
	e.login("fred", u.Password)
	e.ok(u.Password+"\nfred-own-password-1\n", "passwd", "--stdin")
	e.ok("", "audit", "list")
	e.ok("", "sessions", "list")
	if errOut := e.fails("", "sessions", "terminate", c.SessionID); !strings.Contains(errOut, "permission denied") {
		t.Fatalf("auditor terminating: %q", errOut)
	}
	if errOut := e.fails("", "resources", "rm", "prod-db"); !strings.Contains(errOut, "permission denied") {
		t.Fatalf("auditor removing a resource: %q", errOut)
	}
	// Disabling a user ends their sessions.
	e.login("admin", adminPassword)
	e.ok("", "users", "disable", "erin")
	<-c.proc.done
	if !strings.Contains(c.proc.stderr.String(), "user disabled") {
		t.Fatalf("disabled user's connect: %q", c.proc.stderr.String())
	}
}

func TestAPIBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokenOf := func() string {
		b, _ := os.ReadFile(filepath.Join(e.configDir, "login.json"))
		var l struct{ Token string }
		json.Unmarshal(b, &l)
		return l.Token
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedClientConfig(e.fp, pki.ALPNHTTP)}}
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tok := tokenOf()
	tests := []struct {
		name, method, path, token, body string
		status                          int
		says                            string
	}{
		{"malformed JSON", "POST", "/api/v1/resources", tok, `{"name": `, 400, "malformed JSON"},
		{"unknown field", "POST", "/api/v1/roles", tok, `{"name":"x","alow":["a/b"]}`, 400, "unknown field"},
		{"bad pattern", "POST", "/api/v1/roles", tok, `{"name":"x","allow":["nopattern"]}`, 400, "RESOURCE_GLOB/ACCOUNT_GLOB"},
		{"unknown resource", "GET", "/api/v1/resources/nope", tok, "", 404, "not found"},
		{"unknown session", "GET", "/api/v1/sessions/nope", tok, "", 404, "no session"},
		{"no token", "GET", "/api/v1/resources", "", "", 401, "pamd login"},
		{"bogus token", "GET", "/api/v1/resources", "pamd_bogus", "", 401, "pamd login"},
		{"unknown type", "POST", "/api/v1/resources", tok, `{"name":"r","type":"gopher","gateway":"gw1","host":"h","port":1}`, 400, "not supported"},
		{"unknown endpoint", "GET", "/api/v1/nope", tok, "", 404, "no such API endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(tt.method, tt.path, tt.token, tt.body)
			if status != tt.status || !strings.Contains(body, tt.says) {
				t.Fatalf("%s %s: %d %s, want %d containing %q", tt.method, tt.path, status, body, tt.status, tt.says)
			}
		})
	}
	// Forbidden: a plain user at an admin endpoint.
	out := e.ok("", "users", "add", "gina", "--role", "user", "-o", "json")
	var u struct{ Password string }
	json.Unmarshal([]byte(out), &u)
	e.login("gina", u.Password)
	e.ok(u.Password+"\ngina-own-password-1\n", "passwd", "--stdin")
	if status, body := do("POST", "/api/v1/users", tokenOf(), `{"name":"h"}`); status != 403 {
		t.Fatalf("user creating a user: %d %s", status, body)
	}
	// Revoked: after logout the token no longer works.
	revoked := tokenOf()
	e.ok("", "logout")
	if status, _ := do("GET", "/api/v1/auth/whoami", revoked, ""); status != 401 {
		t.Fatalf("revoked token: %d", status)
	}
}

func TestGatewayOfflineIsAClearErrorNotAHang(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "pw-offline-1")
	c := e.connect("echo/raw")
	e.gateway.cmd.Process.Signal(os.Interrupt)
	<-e.gateway.done
	e.waitFor("gateway offline", 10*time.Second, func() bool {
		return strings.Contains(e.ok("", "gateways", "list"), "offline")
	})
	start := time.Now()
	errOut := e.fails("", "connect", "echo/raw")
	if !strings.Contains(errOut, "gateway gw1") || !strings.Contains(errOut, "offline") || time.Since(start) > 10*time.Second {
		t.Fatalf("connect with the gateway offline took %s: %q", time.Since(start), errOut)
	}
	// A connection on the session opened before says so on connect's stderr.
	conn, err := net.Dial("tcp", c.addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitClosed(conn, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.waitFor("refusal on connect's stderr", 5*time.Second, func() bool {
		return strings.Contains(c.proc.stderr.String(), "gateway gw1 is offline")
	})
}

func TestMalformedTunnelHeaderClosesStreamServerKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("echo", "raw", "pw-malformed-1")
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		[]byte("PAMD\x01\x01\xff\xff\xff\xff"),
		[]byte("PAMD\x01"), // truncated
	}
	send := func(sess *yamux.Session, b []byte) (*tunnel.Reply, error) {
		st, err := sess.OpenStream()
		if err != nil {
			return nil, err
		}
		st.Write(b)
		st.Close() // half-close: a truncated header ends here
		st.SetReadDeadline(time.Now().Add(12 * time.Second))
		return tunnel.ReadReply(st)
	}
	// Before a tunnel has authenticated, a malformed first stream is
	// refused and the connection closed.
	for _, g := range garbage {
		sess, err := e.rawTunnel()
		if err != nil {
			t.Fatal(err)
		}
		if r, err := send(sess, g); err == nil && r.Err() == nil {
			t.Fatalf("garbage %q accepted", g)
		}
		select {
		case <-sess.CloseChan():
		case <-time.After(5 * time.Second):
			t.Fatalf("unauthenticated tunnel still open after garbage %q", g)
		}
	}
	// Once authenticated, a malformed stream closes only that stream.
	sess, err := e.rawTunnel()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	id, cred := e.grant("echo", "raw")
	ctrl, _ := sess.OpenStream()
	h, _ := tunnel.NewHeader(tunnel.KindControl, tunnel.Access{SessionID: id, Credential: cred})
	h.WriteTo(ctrl)
	if r, err := tunnel.ReadReply(ctrl); err != nil || r.Err() != nil {
		t.Fatalf("control stream: %v %v", r, err)
	}
	for _, g := range garbage {
		if r, err := send(sess, g); err == nil && r.Err() == nil {
			t.Fatalf("garbage %q accepted", g)
		}
	}
	// The same tunnel still serves a well-formed stream (refused: no such session).
	st, _ := sess.OpenStream()
	h, _ = tunnel.NewHeader(tunnel.KindAccess, tunnel.Access{SessionID: "nope", Credential: "nope"})
	h.WriteTo(st)
	r, err := tunnel.ReadReply(st)
	if err != nil || r.Err() == nil || !strings.Contains(r.Message, "unknown session") {
		t.Fatalf("after garbage: %v %v", r, err)
	}
	if !strings.Contains(e.server.stderr.String(), "malformed tunnel header") {
		t.Fatal("malformed header not logged")
	}
}

func TestDataFileHoldsNoPlaintextAndWrongKeyWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secrets := []string{"plaintext-canary-resource", "canary-account-name", "Canary-Target-P4ssword", "canary-user-name", "canary-db-username"}
	host, port, _ := net.SplitHostPort(echoServer(t))
	e.ok("", "resources", "add", "--type", "tcp", "--name", secrets[0], "--gateway", "gw1", "--host", host, "--port", port)
	e.ok(secrets[2]+"\n", "accounts", "add", secrets[0]+"/"+secrets[1], "--username", secrets[4], "--password-stdin")
	e.ok("", "users", "add", secrets[3])
	c := e.connect(secrets[0] + "/" + secrets[1])
	transfer(t, c.addr(), 1000)
	e.stopServer()

	dbPath := filepath.Join(e.dir, "server", "pamd.db")
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(secrets, "admin", adminPassword, "gw1") {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("data file contains %q in the clear", s)
		}
	}
	// The target password never reached any output either.
	if strings.Contains(e.allOutput(), secrets[2]) {
		t.Error("the account password appeared in pamd output")
	}

	// A wrong master key: a clear error, and the file is untouched.
	wrong := store.GenerateMasterKey()
	_, errOut, err := e.runEnv([]string{"PAMD_MASTER_KEY=" + wrong}, "", "server", "--data-dir", filepath.Join(e.dir, "server"), "--listen", freePort(t))
	if err == nil || !strings.Contains(errOut, "master key does not open") {
		t.Fatalf("wrong key: err %v, stderr %q", err, errOut)
	}
	after, _ := os.ReadFile(dbPath)
	if !bytes.Equal(raw, after) {
		t.Fatal("starting with the wrong master key changed the data file")
	}
	// A missing key file for existing data is refused, not replaced.
	keyFile := filepath.Join(e.dir, "server", "master.key")
	os.Rename(keyFile, keyFile+".bak")
	_, errOut, err = e.run("", "server", "--data-dir", filepath.Join(e.dir, "server"), "--listen", freePort(t))
	if err == nil || !strings.Contains(errOut, "master key file") {
		t.Fatalf("missing key file: err %v, stderr %q", err, errOut)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Fatal("a new master key file was created for existing data")
	}
}

func TestDevCommandComesUpAndKeepsStateAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freePort(t)
	e := &env{t: t, dir: dir, configDir: filepath.Join(dir, "cli")}
	startDev := func() *proc {
		p := e.start(nil, "dev", "--listen", addr, "--data-dir", filepath.Join(dir, "pamd-dev"))
		e.waitFor("pamd dev ready", 20*time.Second, func() bool { return strings.Contains(p.stdout.String(), "pamd dev ready: https://"+addr) })
		return p
	}
	p := startDev()
	out := p.stdout.String()
	var password, loginCmd string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "admin password:"); ok {
			password = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "log in with:"); ok {
			loginCmd = strings.TrimSpace(v)
		}
	}
	if len(password) < 12 || !strings.HasPrefix(loginCmd, "pamd login --server https://"+addr) {
		t.Fatalf("dev banner lacks the password or login command:\n%s", out)
	}
	args := append(strings.Fields(loginCmd)[1:], "--password-stdin")
	e.ok(password+"\n", args...)
	host, port, _ := net.SplitHostPort(echoServer(t))
	e.ok("", "resources", "add", "--type", "tcp", "--name", "echo", "--gateway", "local", "--host", host, "--port", port)
	e.ok("", "accounts", "add", "echo/any")
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done

	p = startDev()
	if !strings.Contains(p.stdout.String(), password) {
		t.Fatalf("restarted dev does not show the same admin password:\n%s", p.stdout.String())
	}
	c := e.connect("echo/any")
	transfer(t, c.addr(), 4096)
}
