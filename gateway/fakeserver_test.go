package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/proxytest"
	"github.com/pamd/pamd/server/servertest"
)

// fakeServer stands in for pamd server toward one gateway: it speaks the
// tunnel protocol from the server's side, so a test can send the gateway
// what a real server never would, and cut it off when it likes.
type fakeServer struct {
	t  *testing.T
	id *gateway.Identity
	// accept decides what happens to each connection after its hello:
	// return false to cut it at once.
	accept   func(n int) bool
	mu       sync.Mutex
	accepted []time.Time // when each connection said hello
	versions []string    // the version each hello named
	sessions chan *yamux.Session
	records  chan tunnel.Backlog
}

func newFakeServer(t *testing.T, accept func(n int) bool) *fakeServer {
	srvPair := pkitest.New(t, pki.Leaf{CommonName: "pamd", Server: true})
	gwPair := pkitest.New(t, pki.Leaf{CommonName: "fake", Usage: x509.ExtKeyUsageClientAuth})
	f := &fakeServer{t: t, accept: accept, sessions: make(chan *yamux.Session, 16), records: make(chan tunnel.Backlog, 16)}
	cfg := &tls.Config{Certificates: []tls.Certificate{srvPair.Cert}, ClientAuth: tls.RequireAnyClientCert, NextProtos: []string{pki.ALPNGateway}}
	var conns atomic.Int32
	addr := proxytest.Serve(t, func(raw net.Conn) { f.serve(tls.Server(raw, cfg), int(conns.Add(1)-1)) })
	f.id = &gateway.Identity{Name: "fake", ServerURL: "https://" + addr, Fingerprint: srvPair.Fingerprint(), CertPEM: gwPair.CertPEM, KeyPEM: gwPair.KeyPEM}
	return f
}

func (f *fakeServer) serve(c *tls.Conn, n int) {
	defer c.Close()
	sess, err := proxy.YamuxServer(c)
	if err != nil {
		return
	}
	defer sess.Close()
	hello, err := sess.AcceptStream()
	if err != nil {
		return
	}
	h, err := tunnel.ReadHeader(hello)
	if err != nil || h.Kind != tunnel.KindHello {
		f.t.Errorf("first stream: %v %v", h, err)
		return
	}
	var body tunnel.Hello
	if err := h.Decode(&body); err != nil {
		f.t.Errorf("hello: %v", err)
		return
	}
	tunnel.OK().WriteTo(hello)
	hello.Close()
	f.mu.Lock()
	f.accepted = append(f.accepted, time.Now())
	f.versions = append(f.versions, body.Version)
	f.mu.Unlock()
	if !f.accept(n) {
		return
	}
	f.sessions <- sess
	for { // the gateway's own streams: renewals are refused, records taken
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer st.Close()
			h, err := tunnel.ReadHeader(st)
			if err != nil {
				return
			}
			if h.Kind != tunnel.KindRecord {
				tunnel.Refuse("not today").WriteTo(st)
				return
			}
			tunnel.OK().WriteTo(st)
			for {
				m, err := tunnel.ReadMessage(st)
				if err != nil {
					return
				}
				var b tunnel.Backlog
				if m.Type == tunnel.MsgBacklog && json.Unmarshal(m.Detail, &b) == nil {
					select {
					case f.records <- b:
					default:
					}
				}
			}
		}()
	}
}

// fakeVersion is the version run gives the gateway (pamd's cli gives it
// the binary's, from internal/buildinfo).
const fakeVersion = "v1.2.3-fake"

// run starts the gateway against the fake server, with the edits to its
// Config; it stops when the test ends.
func (f *fakeServer) run(t *testing.T, edits ...func(*gateway.Config)) {
	cfg := gateway.Config{DataDir: filepath.Join(t.TempDir(), "gw"), Identity: f.id, Version: fakeVersion, RecordBatchDelay: time.Millisecond}
	for _, edit := range edits {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// TestBackoffBetweenReconnections: a server that cuts every connection
// right after hello sees the gateway come back after waits that double
// from 200 ms, each within its ±20% jitter.
func TestBackoffBetweenReconnections(t *testing.T) {
	f := newFakeServer(t, func(int) bool { return false })
	f.run(t)
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.accepted)
		f.mu.Unlock()
		if n > len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections in 10s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, v := range f.versions { // each hello names the version it was given
		if v != fakeVersion {
			t.Errorf("hello %d: version %q, want %q", i+1, v, fakeVersion)
		}
	}
	for i, w := range want {
		gap := f.accepted[i+1].Sub(f.accepted[i])
		lo, hi := time.Duration(float64(w)*0.8), time.Duration(float64(w)*1.2)+250*time.Millisecond // the dial and handshake on a busy machine
		if gap < lo || gap > hi {
			t.Errorf("wait %d: %v, want %v ±20%%", i+1, gap, w)
		}
	}
}

// TestDispatchRefusesWhatItCannotServe sends the gateway streams a real
// server would not: each must be answered with a refusal or closed, and
// the connection must go on serving.
func TestDispatchRefusesWhatItCannotServe(t *testing.T) {
	f := newFakeServer(t, func(int) bool { return true })
	f.run(t)
	var sess *yamux.Session
	select {
	case sess = <-f.sessions:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not connect")
	}
	echo := servertest.EchoServer(t).String()
	future := time.Now().Add(time.Hour)
	desc := func(protocol string, expires time.Time) map[string]any {
		return map[string]any{"session_id": "s1", "protocol": protocol, "target": echo, "expires_at": expires, protocol: map[string]any{}}
	}
	header := func(k tunnel.Kind, body any) []byte {
		h, err := tunnel.NewHeader(k, body)
		if err != nil {
			t.Fatal(err)
		}
		return h.Append(nil)
	}
	tests := []struct {
		name string
		send []byte
		want string // in the refusal; "" means no reply at all (closed)
	}{
		{"garbage header", []byte("GET / HTTP/1.1\r\n\r\n"), ""},
		{"malformed descriptor", header(tunnel.KindDial, map[string]any{"session_id": 5}), "malformed"},
		{"expired session", header(tunnel.KindDial, desc("tcp", time.Now().Add(-time.Minute))), "expired"},
		{"unknown protocol", header(tunnel.KindDial, desc("gopher", future)), "gopher"},
		{"probe of a protocol without probes", header(tunnel.KindProbe, desc("tcp", future)), "probe"},
		{"malformed probe", header(tunnel.KindProbe, map[string]any{"expires_at": "never"}), "malformed"},
		{"malformed rotation", header(tunnel.KindRotate, map[string]any{"account": "not a descriptor"}), "malformed"},
		{"a kind for the server", header(tunnel.KindHello, tunnel.Hello{Name: "x"}), "cannot serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := sess.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(15 * time.Second))
			if _, err := st.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			r, err := tunnel.ReadReply(st)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got a reply %+v to garbage", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			if r.Err() == nil || !strings.Contains(r.Err().Error(), tt.want) {
				t.Fatalf("reply %v, want a refusal saying %q", r.Err(), tt.want)
			}
		})
	}

	// After all that the connection serves: a tcp dial relays, and a
	// notice for its session cuts it.
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	st.Write(header(tunnel.KindDial, desc("tcp", future)))
	if r, err := tunnel.ReadReply(st); err != nil || r.Err() != nil {
		t.Fatalf("tcp dial: %v %v", r, err)
	}
	io.WriteString(st, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the gateway: %q %v", buf, err)
	}
	notice, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer notice.Close()
	notice.SetDeadline(time.Now().Add(10 * time.Second))
	notice.Write(header(tunnel.KindNotice, tunnel.Ended{SessionID: "s1", Reason: "terminated by test"}))
	if r, err := tunnel.ReadReply(notice); err != nil || r.Err() != nil {
		t.Fatalf("notice: %v %v", r, err)
	}
	if _, err := io.ReadAll(st); err != nil && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the connection after the notice: %v", err)
	}

	// The record stream reports an empty backlog.
	select {
	case b := <-f.records:
		if b.Records != 0 || b.Bytes != 0 {
			t.Fatalf("backlog of a fresh gateway: %+v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no backlog report")
	}
}
