package gateway_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamd/pamd/gateway"
)

// The health address says ready while the gateway is connected and not
// once the server is gone; its metrics say so too.
func TestHealthFollowsTheServerConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var gone atomic.Bool
	f := newFakeServer(t, func(int) bool { return !gone.Load() })
	f.run(t, func(c *gateway.Config) { c.HealthListen = addr })
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitUntil(t, "ready", func() bool { code, _ := get("/readyz"); return code == 200 })
	if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, "pamd_gateway_connected 1") || !strings.Contains(metrics, "pamd_gateway_spool_records 0") {
		t.Fatalf("metrics while connected:\n%s", metrics)
	}
	sess := <-f.sessions
	gone.Store(true) // the server goes away and refuses the reconnections
	sess.Close()
	waitUntil(t, "not ready", func() bool {
		code, body := get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not connected")
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
