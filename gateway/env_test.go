package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/servertest"
)

// TestEnrollWithTokenAndRestart: a gateway enrolls with a token over HTTPS,
// keeps its identity in its data dir, renews its certificate once
// connected, and comes back from that dir after a restart; the spent token
// enrolls nothing more.
func TestEnrollWithTokenAndRestart(t *testing.T) {
	e := servertest.NewWith(t, servertest.Options{EnrollWithToken: true})
	dir := e.GatewayConfig.DataDir
	for _, f := range []string{"gateway.json", "gateway.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	id, ok, err := gateway.LoadIdentity(dir)
	if err != nil || !ok || id.Name != servertest.GatewayName || id.ServerURL != e.URL || id.Fingerprint != e.Fingerprint {
		t.Fatalf("identity on disk: %+v %v %v", id, ok, err)
	}
	// Once connected the gateway renews: the server audits the new
	// certificate, and the gateway keeps it in its data dir.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var events []api.AuditEvent
		e.Do(t, e.Client, "GET", "/api/v1/audit?action=gateway.renew", nil, &events)
		id, _, _ = gateway.LoadIdentity(dir)
		c, err := id.Certificate()
		if len(events) > 0 && err == nil && events[0].Outcome == "success" && events[0].Detail == "expires "+c.NotAfter.UTC().Format(time.RFC3339) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewal kept after connecting: audit %+v, certificate on disk %v", events, err)
		}
	}

	if _, err := gateway.Enroll(context.Background(), e.GatewayConfig.Token, ""); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("enrolling again with the spent token: %v", err)
	}

	// Restarts: with the (spent) token still given, and with nothing but the dir.
	for _, tt := range []struct {
		name string
		edit func(*gateway.Config)
	}{
		{"token still given", nil},
		{"the data dir alone", func(c *gateway.Config) { c.Token = "" }},
	} {
		if err := e.RestartGateway(tt.edit); err != nil {
			t.Fatalf("%s: the stopped gateway returned %v", tt.name, err)
		}
		e.WaitGateway(t, true)
	}
}

// TestReconnectsAfterServerRestart: the gateway finds the server again
// after each restart, with backoff, and serves access afterwards.
func TestReconnectsAfterServerRestart(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "echo")
	for i := 0; i < 2; i++ {
		start := time.Now()
		e.RestartServer(t)
		e.WaitGateway(t, true)
		if d := time.Since(start); d > 8*time.Second {
			t.Fatalf("restart %d: the gateway took %v to reconnect", i, d)
		}
	}
	g := e.Open(t, e.Client, api.CreateSessionRequest{Resource: "echo", Account: "any"})
	servertest.Echoes(t, servertest.Connect(t, e.Dial(t, g)), "after two restarts")
}

// TestRevokedGatewayStaysOut: a revoked gateway is cut and cannot come back
// with its certificate, however often it retries; one enrolled in its place
// with a --replace token can.
func TestRevokedGatewayStaysOut(t *testing.T) {
	e := servertest.New(t)
	e.Do(t, e.Client, "POST", "/api/v1/gateways/"+servertest.GatewayName+"/revoke", nil, nil)
	e.WaitGateway(t, false)
	time.Sleep(1500 * time.Millisecond) // several reconnection attempts
	if e.Server.GatewayOnline(servertest.GatewayName) {
		t.Fatal("the revoked gateway is back online")
	}
	var gws []api.Gateway
	e.Do(t, e.Client, "GET", "/api/v1/gateways", nil, &gws)
	if len(gws) != 1 || gws[0].RevokedAt.IsZero() {
		t.Fatalf("gateways after revocation: %+v", gws)
	}

	err := e.Client.Do(context.Background(), "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: servertest.GatewayName}, nil)
	if servertest.Status(err) != http.StatusConflict {
		t.Fatalf("a token for an enrolled name without --replace: %v", err)
	}
	var tok api.GatewayTokenResponse
	e.Do(t, e.Client, "POST", "/api/v1/gateways/tokens", api.GatewayTokenRequest{Name: servertest.GatewayName, Replace: true, TTL: "10m"}, &tok)
	e.RestartGateway(func(c *gateway.Config) {
		c.DataDir, c.Identity, c.Token = t.TempDir(), nil, tok.Token
	})
	e.WaitGateway(t, true)
}

// TestSessionEndCutsConnections: when the server ends a session, the
// gateway cuts its open connections at once.
func TestSessionEndCutsConnections(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "echo")
	g := e.Open(t, e.Client, api.CreateSessionRequest{Resource: "echo", Account: "any"})
	c := servertest.Connect(t, e.Dial(t, g))
	servertest.Echoes(t, c, "before")
	e.Do(t, e.Client, "POST", "/api/v1/sessions/"+g.Session.ID+"/terminate", nil, nil)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the connection stayed open after the session ended")
		}
		break
	}
}

// TestRunRefuses: what Run says instead of running.
func TestRunRefuses(t *testing.T) {
	expired := expiredIdentity(t)
	tests := []struct {
		name string
		cfg  gateway.Config
		want string
	}{
		{"no data dir", gateway.Config{}, "--data-dir"},
		{"batch delay too long", gateway.Config{DataDir: t.TempDir(), RecordBatchDelay: time.Hour}, "--record-batch-delay"},
		{"batch delay negative", gateway.Config{DataDir: t.TempDir(), RecordBatchDelay: -time.Second}, "--record-batch-delay"},
		{"not enrolled, no token", gateway.Config{DataDir: t.TempDir()}, "start once with --token"},
		{"not a token", gateway.Config{DataDir: t.TempDir(), Token: "hello"}, "not a pamd gateway enrollment token"},
		{"expired, no token", gateway.Config{DataDir: expired}, "re-enroll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := gateway.Run(ctx, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if err := (&gateway.Config{DataDir: "x"}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
