package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

const limitsAdminPassword = "limits-admin-password-1"

// serving starts a server on loopback with its limits changed by tune.
func serving(t *testing.T, tune func(*limits)) (*Server, string) {
	t.Helper()
	lim := defaultLimits()
	if tune != nil {
		tune(&lim)
	}
	s, err := open(Config{DataDir: t.TempDir(), MasterKey: store.GenerateMasterKey(), AdminPassword: limitsAdminPassword}, lim)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, ln.Addr().String()
}

// tunnelClient is a pamd connect-like yamux client, with no session yet.
func tunnelClient(t *testing.T, s *Server, addr string) *yamux.Session {
	t.Helper()
	c, err := proxy.DialTLS(context.Background(), addr, pki.PinnedClientConfig(s.CAFingerprint(), pki.ALPNTunnel))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := proxy.YamuxClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// liveTestSession is an active session (with no resource behind it) and
// its credential.
func liveTestSession(t *testing.T, s *Server) (id, credential string) {
	t.Helper()
	credential = auth.RandomSecret(32)
	sess := &store.Session{ID: store.NewID(), UserName: "admin", CredentialHash: auth.HashToken(credential),
		CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}
	if err := s.st.Update(func(tx *store.Tx) error { return tx.PutSession(sess) }); err != nil {
		t.Fatal(err)
	}
	s.live.Add(sess)
	return sess.ID, credential
}

// openWith opens a stream, writes raw and reads the server's reply.
func openWith(sess *yamux.Session, raw []byte) (*yamux.Stream, *tunnel.Reply, error) {
	st, err := sess.OpenStream()
	if err != nil {
		return nil, nil, err
	}
	st.SetDeadline(time.Now().Add(5 * time.Second))
	// The server may refuse after the header and hang up while the rest of
	// raw is still being written: the write then fails, but the refusal has
	// arrived and is what the test is about.
	_, werr := st.Write(raw)
	r, err := tunnel.ReadReply(st)
	st.SetDeadline(time.Time{})
	if err != nil && werr != nil {
		return st, nil, werr
	}
	return st, r, err
}

func accessHeader(t *testing.T, kind tunnel.Kind, id, credential string) []byte {
	h, err := tunnel.NewHeader(kind, tunnel.Access{SessionID: id, Credential: credential})
	if err != nil {
		t.Fatal(err)
	}
	return h.Append(nil)
}

// claim64K is a header claiming a 64 KiB access body, and most of the body.
func claim64K() []byte {
	b := append([]byte("PAMD"), tunnel.Version, byte(tunnel.KindAccess))
	b = binary.BigEndian.AppendUint32(b, tunnel.MaxBody)
	return append(b, make([]byte, 60<<10)...)
}

func closedWithin(sess *yamux.Session, d time.Duration) bool {
	select {
	case <-sess.CloseChan():
		return true
	case <-time.After(d):
		return false
	}
}

func TestUnauthenticatedTunnelGetsOneStream(t *testing.T) {
	s, addr := serving(t, func(l *limits) { l.authTimeout = time.Second })
	// Settle what starting the server allocated, then watch the heap.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	cli := tunnelClient(t, s, addr)
	// The first stream claims a 64 KiB body: refused without waiting for it.
	_, r, err := openWith(cli, claim64K())
	if err != nil || r.Err() == nil || !strings.Contains(r.Message, "malformed") {
		t.Fatalf("first stream claiming a 64 KiB access body: %v, %v", r, err)
	}
	if !closedWithin(cli, 3*time.Second) {
		t.Fatal("the connection stayed open after its first stream failed to authenticate")
	}

	// A flood: the first stream says nothing, the others claim 64 KiB
	// bodies. The second is refused by closing the connection.
	cli = tunnelClient(t, s, addr)
	first, _ := cli.OpenStream()
	first.Write([]byte("PAMD")) // a start, never finished
	flood := claim64K()
	opened := 0
	for range 400 {
		st, err := cli.OpenStream()
		if err != nil {
			break
		}
		st.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := st.Write(flood); err != nil {
			break
		}
		opened++
	}
	closed := closedWithin(cli, 3*time.Second)
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("flood: %d streams written before the server hung up; heap grew by %d KiB at most", opened, grew>>10)
	if !closed {
		t.Errorf("an unauthenticated connection that opened %d streams is still open", opened)
	}
	if grew > 16<<20 {
		t.Errorf("the heap grew by %d MiB during the flood", grew>>20)
	}

	// A first stream that says nothing: the connection ends at the deadline.
	cli = tunnelClient(t, s, addr)
	start := time.Now()
	idle, _ := cli.OpenStream()
	idle.Write([]byte("PA"))
	if !closedWithin(cli, 3*time.Second) {
		t.Fatal("a connection whose first stream never authenticated is still open after 3 s (deadline 1 s)")
	}
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Fatalf("closed after %s, before the deadline", took)
	}
	// A connection that opens no stream at all ends too.
	cli = tunnelClient(t, s, addr)
	if !closedWithin(cli, 3*time.Second) {
		t.Fatal("a connection with no stream is still open after 3 s")
	}
}

func TestAuthenticatedTunnelStreams(t *testing.T) {
	s, addr := serving(t, func(l *limits) { l.clientStreams, l.perSource = 8, 1 })
	id, cred := liveTestSession(t, s)
	cli := tunnelClient(t, s, addr)
	ctrl, r, err := openWith(cli, accessHeader(t, tunnel.KindControl, id, cred))
	if err != nil || r.Err() != nil {
		t.Fatalf("control stream: %v, %v", r, err)
	}
	defer ctrl.Close()

	// Authenticated, it gave back its unauthenticated slot: with one slot per
	// source, another connection still gets its handshake.
	other := tunnelClient(t, s, addr)
	other.Close()

	// Once authenticated, a bad stream is refused and the tunnel stays.
	for _, bad := range [][]byte{claim64K(), []byte("GET / HTTP/1.1\r\n\r\n"), accessHeader(t, tunnel.KindAccess, "nope", "nope")} {
		st, r, err := openWith(cli, bad)
		if err != nil || r.Err() == nil {
			t.Fatalf("bad stream %q…: %v, %v", bad[:min(len(bad), 12)], r, err)
		}
		st.Close()
	}
	if cli.IsClosed() {
		t.Fatal("a refused stream closed an authenticated tunnel")
	}

	// The control stream holds one of 8 slots; 7 streams that never send
	// their header hold the rest, and the next one is refused.
	time.Sleep(300 * time.Millisecond) // the refused streams' slots come back
	var held []*yamux.Stream
	for range 7 {
		st, err := cli.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("PAMD"))
		defer st.Close()
		held = append(held, st)
	}
	for i, st := range held {
		st.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := st.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("held stream %d was answered: %v", i+1, err)
		}
	}
	_, r, err = openWith(cli, accessHeader(t, tunnel.KindAccess, id, cred))
	if err != nil || r.Err() == nil || !strings.Contains(r.Message, "too many streams") {
		t.Fatalf("stream over the cap: %v, %v", r, err)
	}
	if cli.IsClosed() {
		t.Fatal("the stream cap closed the tunnel")
	}
}

func TestUnauthenticatedConnectionsPerSource(t *testing.T) {
	s, addr := serving(t, func(l *limits) { l.perSource = 4 })
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr) // a handshake that never starts
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(200 * time.Millisecond)
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatal("the 5th unauthenticated connection from one source was not refused")
	}
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("a connection within the limit was cut: %v", err)
		}
	}
	// A slot given back is a slot again.
	held[0].Close()
	time.Sleep(200 * time.Millisecond)
	c, err := tls.Dial("tcp", addr, pki.PinnedClientConfig(s.CAFingerprint(), pki.ALPNHTTP))
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	c.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSourceOfAddr(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"192.0.2.1:1", "192.0.2.1:2"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2"}, // one /64
	} {
		a, _ := net.ResolveTCPAddr("tcp", tt.a)
		b, _ := net.ResolveTCPAddr("tcp", tt.b)
		if sourceOfAddr(a) != sourceOfAddr(b) {
			t.Errorf("%s and %s are different sources", tt.a, tt.b)
		}
	}
	a, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:2::1]:1")
	b, _ := net.ResolveTCPAddr("tcp", "[2001:db8:1:3::1]:1")
	if sourceOfAddr(a) == sourceOfAddr(b) {
		t.Error("two /64s are one source")
	}
}

// httpConn is a raw TLS connection to the HTTP side.
func httpConn(t *testing.T, s *Server, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, pki.PinnedClientConfig(s.CAFingerprint(), pki.ALPNHTTP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dripUntilCut writes msg a byte every 100 ms and reports how long the
// server took to cut the connection (or answer), at most within.
func dripUntilCut(c net.Conn, msg string, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	cut := make(chan struct{})
	go func() {
		c.SetReadDeadline(start.Add(within))
		io.Copy(io.Discard, c)
		close(cut)
	}()
	for i := 0; i < len(msg); i++ {
		select {
		case <-cut:
			return time.Since(start), time.Since(start) < within
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			break
		}
	}
	<-cut
	return time.Since(start), time.Since(start) < within
}

func TestHTTPTimeouts(t *testing.T) {
	const short = 500 * time.Millisecond
	s, addr := serving(t, func(l *limits) { l.httpReadHeader, l.httpRead, l.httpIdle = short, short, short })
	slowHeader := "GET /api/v1/info HTTP/1.1\r\nHost: pamd\r\nX-Slow: " + strings.Repeat("a", 100) + "\r\n\r\n"
	if took, ok := dripUntilCut(httpConn(t, s, addr), slowHeader, 5*time.Second); !ok {
		t.Errorf("a header sent a byte every 100 ms was not cut (%s; ReadHeaderTimeout %s)", took, short)
	}
	slowBody := "POST /api/v1/auth/login HTTP/1.1\r\nHost: pamd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
	c := httpConn(t, s, addr)
	io.WriteString(c, slowBody)
	if took, ok := dripUntilCut(c, `{"username":"admin","password":"`+strings.Repeat("x", 60)+`"}`, 5*time.Second); !ok {
		t.Errorf("a body sent a byte every 100 ms was not cut (%s; ReadTimeout %s)", took, short)
	}

	// An idle keep-alive connection is closed.
	c = httpConn(t, s, addr)
	io.WriteString(c, "GET /api/v1/info HTTP/1.1\r\nHost: pamd\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	if _, err := br.ReadByte(); isTimeout(err) {
		t.Errorf("an idle keep-alive connection is still open after 5 s (IdleTimeout %s)", short)
	}

	// Oversized headers are refused.
	c = httpConn(t, s, addr)
	fmt.Fprintf(c, "GET /api/v1/info HTTP/1.1\r\nHost: pamd\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 100<<10))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: %v %v", resp, err)
	}
}

// A handler that runs long after reading its body (a rotation waits for
// its gateway for minutes) is not cut by ReadTimeout.
func TestLongHandlerOutlivesReadTimeout(t *testing.T) {
	s, _ := serving(t, func(l *limits) { l.httpRead = 200 * time.Millisecond })
	var ctxErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(800 * time.Millisecond)
		ctxErr = r.Context().Err()
		w.Write([]byte("done"))
	})
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = s.newHTTPServer(h)
	hs.Start()
	defer hs.Close()
	for _, body := range []string{`{"a":"b"}`, ""} { // with a body, and without
		resp, err := http.Post(hs.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body != "" && (string(b) != "done" || ctxErr != nil) {
			t.Fatalf("long handler: %q, context %v", b, ctxErr)
		}
	}
}

func TestUICookieHasHostPrefix(t *testing.T) {
	s, err := New(Config{DataDir: t.TempDir(), MasterKey: store.GenerateMasterKey(), AdminPassword: limitsAdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer s.st.Close()
	h := s.api.Handler(http.NotFoundHandler())
	req := httptest.NewRequest("POST", "https://pamd.test/api/v1/ui/login", strings.NewReader(`{"username":"admin","password":"`+limitsAdminPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	cookies := w.Result().Cookies()
	if w.Code != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("ui login: %d %s", w.Code, w.Body.String())
	}
	ck := cookies[0]
	// What browsers require of a __Host- cookie.
	if ck.Name != "__Host-pamd_session" || !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %q: Secure %v Path %q Domain %q HttpOnly %v SameSite %v", ck.Name, ck.Secure, ck.Path, ck.Domain, ck.HttpOnly, ck.SameSite)
	}
	req = httptest.NewRequest("GET", "https://pamd.test/api/v1/auth/whoami", nil)
	req.AddCookie(ck)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("whoami with the cookie: %d %s", w.Code, w.Body.String())
	}
}

func TestGatewayStreamCap(t *testing.T) {
	s, addr := serving(t, func(l *limits) { l.gatewayStreams = 4 })
	key, _ := pki.NewKey()
	der, leaf, err := s.ca.IssueGateway(nil, "capped", &key.PublicKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	err = s.st.Update(func(tx *store.Tx) error {
		return tx.CreateGateway(&store.Gateway{ID: store.NewID(), Name: "capped", CertSerial: leaf.SerialNumber.String(), CreatedAt: time.Now().UTC()})
	})
	if err != nil {
		t.Fatal(err)
	}
	tc := pki.PinnedClientConfig(s.CAFingerprint(), pki.ALPNGateway)
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := proxy.YamuxClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	hello, _ := tunnel.NewHeader(tunnel.KindHello, tunnel.Hello{Name: "capped", Version: "test"})
	if _, r, err := openWith(gw, hello.Append(nil)); err != nil || r.Err() != nil {
		t.Fatalf("hello: %v %v", r, err)
	}
	for range 4 { // streams that never send their header hold every slot
		st, err := gw.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("PAMD"))
		defer st.Close()
	}
	time.Sleep(200 * time.Millisecond)
	rec, _ := tunnel.NewHeader(tunnel.KindRecord, tunnel.Hello{Name: "capped", Version: "test"})
	if _, r, err := openWith(gw, rec.Append(nil)); err != nil || r.Err() == nil || !strings.Contains(r.Message, "too many streams") {
		t.Fatalf("stream over the cap: %v %v", r, err)
	}
}
