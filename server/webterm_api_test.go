package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/servertest"
)

// shellTarget is an SSH server on loopback for the web terminal's tests:
// password login, a pty and a shell that echoes what is typed, answers
// "size" with the terminal's rows and columns, and "exit" with status 0.
type shellTarget struct {
	addr     *net.TCPAddr
	password string
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startShellTarget(t *testing.T) *shellTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	st := &shellTarget{addr: ln.Addr().(*net.TCPAddr), password: "target-pw-1"}
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if string(pw) != st.password {
			return nil, errors.New("wrong password")
		}
		return nil, nil
	}}
	cfg.AddHostKey(signer)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			st.mu.Lock()
			st.conns = append(st.conns, c)
			st.mu.Unlock()
			st.wg.Add(1)
			go func() { defer st.wg.Done(); st.serve(c, cfg) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		st.mu.Lock()
		for _, c := range st.conns {
			c.Close()
		}
		st.mu.Unlock()
		st.wg.Wait()
	})
	return st
}

func (st *shellTarget) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return // the gateway's host key probe, for one
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); serveShell(ch, creqs) }()
	}
}

// serveShell is the target's shell on one session channel.
func serveShell(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var mu sync.Mutex
	var rows, cols uint32
	setSize := func(p []byte) {
		// pty-req: TERM string, cols, rows, ...; window-change: cols, rows, ...
		mu.Lock()
		defer mu.Unlock()
		if len(p) >= 8 {
			cols, rows = binary.BigEndian.Uint32(p[0:]), binary.BigEndian.Uint32(p[4:])
		}
	}
	started := make(chan struct{})
	go func() {
		for r := range reqs {
			switch r.Type {
			case "pty-req":
				if len(r.Payload) >= 4 {
					n := binary.BigEndian.Uint32(r.Payload)
					if int(4+n) <= len(r.Payload) {
						setSize(r.Payload[4+n:])
					}
				}
				r.Reply(true, nil)
			case "window-change":
				setSize(r.Payload)
			case "shell":
				r.Reply(true, nil)
				close(started)
			default:
				r.Reply(false, nil)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		return
	}
	fmt.Fprint(ch, "$ ")
	var line []byte
	buf := make([]byte, 1024)
	for {
		n, err := ch.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			if b != '\r' {
				line = append(line, b)
				ch.Write([]byte{b})
				continue
			}
			ch.Write([]byte("\r\n"))
			switch cmd := string(line); cmd {
			case "size":
				mu.Lock()
				fmt.Fprintf(ch, "%d %d\r\n", rows, cols)
				mu.Unlock()
			case "exit":
				ch.SendRequest("exit-status", false, []byte{0, 0, 0, 0})
				return
			default:
				fmt.Fprintf(ch, "you said %s\r\n", cmd)
			}
			line = line[:0]
			fmt.Fprint(ch, "$ ")
		}
	}
}

// termEnv is a server with an ssh resource box (account ops) on a
// shellTarget, granted to alice and bob by the role shells, and an echo
// resource granted to alice as well.
type termEnv struct {
	*servertest.Env
	http *http.Client
}

func newTermEnv(t *testing.T) *termEnv {
	e := servertest.New(t)
	st := startShellTarget(t)
	e.Do(t, e.Client, "POST", "/api/v1/resources", api.Resource{Name: "box", Type: "ssh", Gateway: servertest.GatewayName, Host: "127.0.0.1", Port: st.addr.Port}, nil)
	e.Do(t, e.Client, "POST", "/api/v1/resources/box/accounts", api.CreateAccountRequest{Name: "ops", Username: "ops", Password: st.password}, nil)
	e.Do(t, e.Client, "POST", "/api/v1/resources/box/accounts", api.CreateAccountRequest{Name: "bad", Username: "ops", Password: "not-the-password", SkipLoginCheck: true}, nil)
	e.AddEchoResource(t, "echo")
	e.AddRole(t, api.Role{Name: "shells", Allow: []string{"box/*", "echo/*"}, MaxDuration: "1h"})
	e.AddUser(t, "alice", "shells")
	e.AddUser(t, "bob", "shells")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedClientConfig(e.Fingerprint, pki.ALPNHTTP)}}
	t.Cleanup(hc.CloseIdleConnections)
	return &termEnv{Env: e, http: hc}
}

// cookie logs in to the console as name and returns its session cookie.
func (e *termEnv) cookie(t *testing.T, name, password string) string {
	t.Helper()
	body, _ := json.Marshal(api.LoginRequest{Username: name, Password: password})
	resp, err := e.http.Post(e.URL+"/api/v1/ui/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-pamd_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("console login as %s: %d, no cookie", name, resp.StatusCode)
	return ""
}

// open opens a session as the cookie's user, through the console's API
// (with its CSRF token), and returns its id.
func (e *termEnv) open(t *testing.T, cookie, target, duration string) string {
	t.Helper()
	var ui struct{ CSRF string }
	e.call(t, cookie, "", "GET", "/api/v1/ui/session", nil, &ui)
	res, acct, _ := strings.Cut(target, "/")
	var g api.SessionGrant
	e.call(t, cookie, ui.CSRF, "POST", "/api/v1/sessions", api.CreateSessionRequest{Resource: res, Account: acct, Duration: duration}, &g)
	if g.Credential != "" {
		t.Fatal("the console's session grant carries the session credential")
	}
	return g.Session.ID
}

func (e *termEnv) call(t *testing.T, cookie, csrf, method, path string, in, out any) {
	t.Helper()
	var body bytes.Buffer
	if in != nil {
		json.NewEncoder(&body).Encode(in)
	}
	req, _ := http.NewRequest(method, e.URL+path, &body)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
}

// dial opens the session's terminal with the cookie (may be "") and the
// Origin (may be ""); on a refusal it returns the HTTP status.
func (e *termEnv) dial(t *testing.T, id, cookie, origin string) (*websocket.Conn, int) {
	t.Helper()
	return e.dialPath(t, "/api/v1/sessions/"+id+"/terminal?cols=80&rows=24", cookie, origin)
}

// dialPath opens a WebSocket on path, as dial does.
func (e *termEnv) dialPath(t *testing.T, path, cookie, origin string) (*websocket.Conn, int) {
	t.Helper()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, strings.Replace(e.URL, "https:", "wss:", 1)+path,
		&websocket.DialOptions{HTTPClient: e.http, HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial the terminal: %v", err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	return ws, http.StatusSwitchingProtocols
}

// screen reads the terminal until want shows, or a control message comes,
// and returns what it read and the control (nil: want showed).
func screen(t *testing.T, ws *websocket.Conn, want string, within time.Duration) (string, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out strings.Builder
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v; the terminal showed %q", want, err, out.String())
		}
		if typ == websocket.MessageText {
			var c map[string]string
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatalf("control %q: %v", b, err)
			}
			return out.String(), c
		}
		out.Write(b)
		if want != "" && strings.Contains(out.String(), want) {
			return out.String(), nil
		}
	}
}

func typeIn(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.Write(context.Background(), websocket.MessageBinary, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestWebTerminalRefusals: only the session's own user attaches, from the
// console's own origin; a resource without a shell is told in-band.
func TestWebTerminalRefusals(t *testing.T) {
	e := newTermEnv(t)
	alice := e.cookie(t, "alice", "alice-servertest-password")
	bob := e.cookie(t, "bob", "bob-servertest-password")
	admin := e.cookie(t, "admin", servertest.AdminPassword)
	id := e.open(t, alice, "box/ops", "")
	origin := e.URL
	tests := []struct {
		name, id, cookie, origin string
		want                     int
	}{
		{"no cookie", id, "", origin, http.StatusUnauthorized},
		{"another user's session", id, bob, origin, http.StatusNotFound},
		{"an admin, another user's session", id, admin, origin, http.StatusNotFound},
		{"no such session", "nothing", alice, origin, http.StatusNotFound},
		{"another site's page", id, alice, "https://evil.example", http.StatusForbidden},
		{"the same host over plain HTTP", id, alice, strings.Replace(origin, "https:", "http:", 1), http.StatusForbidden},
		{"no Origin", id, alice, "", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := e.dial(t, tt.id, tt.cookie, tt.origin); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("not an SSH resource", func(t *testing.T) {
		ws, _ := e.dial(t, e.open(t, alice, "echo/any", ""), alice, origin)
		if _, c := screen(t, ws, "", 10*time.Second); !strings.Contains(c["closed"], "is a tcp resource") {
			t.Fatalf("control %v", c)
		}
	})
	t.Run("the target refuses the stored credential", func(t *testing.T) {
		ws, _ := e.dial(t, e.open(t, alice, "box/bad", ""), alice, origin)
		out, c := screen(t, ws, "", 10*time.Second)
		if !strings.Contains(out, "pamd: the SSH server of resource box refused") || c["closed"] != "pamd: the target refused the login (see above)" {
			t.Fatalf("terminal %q, control %v", out, c)
		}
	})
	t.Run("an ended session", func(t *testing.T) {
		ended := e.open(t, alice, "box/ops", "")
		e.Do(t, e.Client, "POST", "/api/v1/sessions/"+ended+"/terminate", nil, nil)
		ws, _ := e.dial(t, ended, alice, origin)
		if _, c := screen(t, ws, "", 10*time.Second); c["ended"] != "terminated by admin" {
			t.Fatalf("control %v", c)
		}
	})
	t.Run("a malformed control", func(t *testing.T) {
		ws, _ := e.dial(t, id, alice, origin)
		screen(t, ws, "$ ", 10*time.Second)
		ws.Write(context.Background(), websocket.MessageText, []byte(`{"resize":{"cols":0,"rows":5000}}`))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
					t.Fatalf("after a malformed control: %v, want a policy violation close", err)
				}
				return
			}
		}
	})
}

// TestWatchRefusals: only admins and auditors watch, only live sessions,
// only from the console's origin; a refused watch is neither told to the
// watched user nor audited as one.
func TestWatchRefusals(t *testing.T) {
	e := newTermEnv(t)
	alice := e.cookie(t, "alice", "alice-servertest-password")
	admin := e.cookie(t, "admin", servertest.AdminPassword)
	id := e.open(t, alice, "box/ops", "")
	ended := e.open(t, alice, "box/ops", "")
	e.Do(t, e.Client, "POST", "/api/v1/sessions/"+ended+"/terminate", nil, nil)
	watches := func() int {
		var evs []api.AuditEvent
		e.Do(t, e.Client, "GET", "/api/v1/audit?action=session.watch", nil, &evs)
		return len(evs)
	}
	for _, tt := range []struct {
		name, id, cookie, origin string
		want                     int
	}{
		{"a user", id, alice, e.URL, http.StatusForbidden},
		{"another site's page", id, admin, "https://evil.example", http.StatusForbidden},
		{"no Origin", id, admin, "", http.StatusForbidden},
		{"an ended session", ended, admin, e.URL, http.StatusConflict},
		{"no such session", "nothing", admin, e.URL, http.StatusNotFound},
	} {
		if _, got := e.dialPath(t, "/api/v1/sessions/"+tt.id+"/watch", tt.cookie, tt.origin); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	if n := watches(); n != 0 {
		t.Fatalf("%d session.watch events after refused watches, want none", n)
	}
	if _, got := e.dialPath(t, "/api/v1/sessions/"+id+"/watch", admin, e.URL); got != http.StatusSwitchingProtocols {
		t.Fatalf("the admin's watch: status %d", got)
	}
	if n := watches(); n != 1 {
		t.Fatalf("%d session.watch events after one watch, want 1", n)
	}
}

// TestWebTerminalShell: a shell through the gateway with the resource's
// stored credential, resized, recorded as a connection of the session,
// and told within a second when the session is terminated or expires.
func TestWebTerminalShell(t *testing.T) {
	e := newTermEnv(t)
	alice := e.cookie(t, "alice", "alice-servertest-password")
	id := e.open(t, alice, "box/ops", "")
	ws, _ := e.dial(t, id, alice, e.URL)
	screen(t, ws, "$ ", 10*time.Second)
	typeIn(t, ws, "hello-web\r")
	screen(t, ws, "you said hello-web", 10*time.Second)
	typeIn(t, ws, "size\r")
	screen(t, ws, "24 80", 10*time.Second)
	ws.Write(context.Background(), websocket.MessageText, []byte(`{"resize":{"cols":132,"rows":43}}`))
	// The window change reaches the target beside the typed bytes, not in
	// line with them: ask until it has.
	for deadline := time.Now().Add(10 * time.Second); ; {
		typeIn(t, ws, "size\r")
		if out, _ := screen(t, ws, "\r\n$ ", 10*time.Second); strings.Contains(out, "43 132") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the terminal's size did not change")
		}
		time.Sleep(50 * time.Millisecond)
	}

	start := time.Now()
	e.Do(t, e.Client, "POST", "/api/v1/sessions/"+id+"/terminate", nil, nil)
	if _, c := screen(t, ws, "", 5*time.Second); c["ended"] != "terminated by admin" {
		t.Fatalf("control after terminate: %v", c)
	} else if d := time.Since(start); d > time.Second {
		t.Fatalf("told %s after terminate, want within 1 s", d)
	}
	// The connection's end is recorded a commit's time after it ended.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var s api.Session
		e.Do(t, e.Client, "GET", "/api/v1/sessions/"+id, nil, &s)
		if len(s.Connections) == 1 && !s.Connections[0].EndedAt.IsZero() {
			if c := s.Connections[0]; !strings.HasPrefix(c.ClientAddr, "127.0.0.1:") || c.BytesDown == 0 || c.BytesUp == 0 || c.Error != "terminated by admin" {
				t.Fatalf("the connection's record: %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections of the session: %+v", s.Connections)
		}
	}
	// The gateway recorded the shell: what was typed is in the session's records.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var recs []api.Record
		e.Do(t, e.Client, "GET", "/api/v1/sessions/"+id+"/records", nil, &recs)
		var typed strings.Builder
		for _, r := range recs {
			if r.Type == "i" {
				typed.WriteString(r.Data)
			}
		}
		if strings.Contains(typed.String(), "hello-web") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the records lack the typed input: %q", typed.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A session that expires says so within a second of its expiry.
	short := e.open(t, alice, "box/ops", "2s")
	ws2, _ := e.dial(t, short, alice, e.URL)
	screen(t, ws2, "$ ", 10*time.Second)
	var sess api.Session
	e.Do(t, e.Client, "GET", "/api/v1/sessions/"+short, nil, &sess)
	if _, c := screen(t, ws2, "", 10*time.Second); c["ended"] != "expired" {
		t.Fatalf("control at expiry: %v", c)
	} else if d := time.Since(sess.ExpiresAt); d > time.Second {
		t.Fatalf("told %s after the expiry, want within 1 s", d)
	}

	// The shell exiting closes the terminal without ending the session.
	third := e.open(t, alice, "box/ops", "")
	ws3, _ := e.dial(t, third, alice, e.URL)
	screen(t, ws3, "$ ", 10*time.Second)
	typeIn(t, ws3, "exit\r")
	if _, c := screen(t, ws3, "", 10*time.Second); c["closed"] != "the shell exited" {
		t.Fatalf("control after exit: %v", c)
	}

	// A terminal open when pamd stops is told, and leaves nothing running.
	ws4, _ := e.dial(t, e.open(t, alice, "box/ops", ""), alice, e.URL)
	screen(t, ws4, "$ ", 10*time.Second)
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop() }()
	if _, c := screen(t, ws4, "", 10*time.Second); c["closed"] == "" {
		t.Fatalf("control when pamd stops: %v", c)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stopping: %v", err)
	}
}
