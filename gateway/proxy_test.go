package gateway_test

import (
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/internal/httpconnect/httpconnecttest"
	"github.com/pamd/pamd/server/servertest"
)

const (
	proxyUser     = "gw-dc1"
	proxyPassword = "proxy-pw-7f3a9c"
)

// TestTunnelThroughHTTPProxy: with --proxy, the gateway's connection to
// the server is a tunnel through the proxy (which counts it), and the
// gateway serves over it as over a direct one.
func TestTunnelThroughHTTPProxy(t *testing.T) {
	p := httpconnecttest.Start(t, proxyUser, proxyPassword)
	f := newFakeServer(t, func(int) bool { return true })
	f.run(t, func(c *gateway.Config) { c.Proxy = p.URL.String() })
	select {
	case <-f.sessions:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway did not connect through the proxy")
	}
	server := strings.TrimPrefix(f.id.ServerURL, "https://")
	if got := p.Tunnels(); len(got) != 1 || got[0] != server || p.Refused() != 0 {
		t.Fatalf("proxy tunnels %v, refused %d; want one tunnel to %s", got, p.Refused(), server)
	}
}

// TestProxyRefusalIsLogged: a proxy that refuses the gateway's
// credentials is named in the gateway's log with its answer, never with
// the password, and the gateway keeps trying.
func TestProxyRefusalIsLogged(t *testing.T) {
	p := httpconnecttest.Start(t, proxyUser, proxyPassword)
	f := newFakeServer(t, func(int) bool { return true })
	wrong := &url.URL{Scheme: "http", Host: p.URL.Host, User: url.UserPassword(proxyUser, "wrong-pw-51d2e8")}
	var logs syncBuffer
	f.run(t, func(c *gateway.Config) {
		c.Proxy = wrong.String()
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	want := "proxy http://" + p.URL.Host + " refused CONNECT: 407 Proxy Authentication Required"
	for deadline := time.Now().Add(10 * time.Second); p.Refused() < 2 || !strings.Contains(logs.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %d refusals the log says:\n%s\nwant %q", p.Refused(), logs.String(), want)
		}
	}
	if strings.Contains(logs.String(), "wrong-pw-51d2e8") || strings.Contains(logs.String(), proxyPassword) {
		t.Fatalf("the log shows the proxy's password:\n%s", logs.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.accepted) != 0 || len(p.Tunnels()) != 0 {
		t.Fatalf("connected anyway: %d hellos, tunnels %v", len(f.accepted), p.Tunnels())
	}
}

// TestEnrollThroughHTTPProxy: against a real server, the enrollment (HTTPS)
// and then the tunnel both go through the proxy.
func TestEnrollThroughHTTPProxy(t *testing.T) {
	p := httpconnecttest.Start(t, proxyUser, proxyPassword)
	e := servertest.NewWith(t, servertest.Options{EnrollWithToken: true, Gateway: func(c *gateway.Config) { c.Proxy = p.URL.String() }})
	got := p.Tunnels()
	if len(got) < 2 || p.Refused() != 0 {
		t.Fatalf("proxy tunnels %v, refused %d; want the enrollment's and the tunnel's", got, p.Refused())
	}
	for _, to := range got {
		if to != e.Addr {
			t.Fatalf("proxy tunnels %v; want each to the server, %s", got, e.Addr)
		}
	}
}

// syncBuffer is a log the gateway's goroutines write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
