package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/proxy/local"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/server/servertest"
)

// accessEnv has an echo resource, a role granting it (with a reason, at
// most an hour) to alice, bob with no grant, and audra the auditor.
type accessEnv struct {
	*servertest.Env
	alice, bob, audra *apiclient.Client
}

func newAccessEnv(t *testing.T) *accessEnv {
	e := servertest.New(t)
	e.AddEchoResource(t, "echo")
	e.AddEchoResource(t, "secret")
	e.AddRole(t, api.Role{Name: "echoers", Allow: []string{"echo/*"}, MaxDuration: "1h", RequireReason: true})
	a := &accessEnv{Env: e}
	a.alice, _ = e.AddUser(t, "alice", "echoers")
	a.bob, _ = e.AddUser(t, "bob", "user")
	a.audra, _ = e.AddUser(t, "audra", "auditor")
	return a
}

func session(t *testing.T, c *apiclient.Client, id string) api.Session {
	t.Helper()
	var s api.Session
	if err := c.Do(context.Background(), "GET", "/api/v1/sessions/"+id, nil, &s); err != nil {
		t.Fatalf("get session %s: %v", id, err)
	}
	return s
}

// TestAccessGrants: who may open which access, and how the grant is shaped.
func TestAccessGrants(t *testing.T) {
	e := newAccessEnv(t)
	tests := []struct {
		name string
		as   *apiclient.Client
		req  api.CreateSessionRequest
		want int
	}{
		{"granted, with a reason", e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "check", Duration: "10m"}, 200},
		{"granted, without the reason the role wants", e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any"}, 400},
		{"not granted", e.alice, api.CreateSessionRequest{Resource: "secret", Account: "any", Reason: "curious"}, 403},
		{"does not exist: the same answer", e.alice, api.CreateSessionRequest{Resource: "nothing", Account: "any", Reason: "curious"}, 403},
		{"no role grants anything", e.bob, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x"}, 403},
		{"an auditor reads, but has no access", e.audra, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x"}, 403},
		{"bad duration", e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x", Duration: "soon"}, 400},
		{"negative duration", e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x", Duration: "-1h"}, 400},
		{"a reason too long", e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: strings.Repeat("r", 1025)}, 400},
		{"admin, anything", e.Client, api.CreateSessionRequest{Resource: "secret", Account: "any"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g api.SessionGrant
			err := tt.as.Do(context.Background(), "POST", "/api/v1/sessions", tt.req, &g)
			if got := servertest.Status(err); got != tt.want {
				t.Fatalf("status %d (%v), want %d", got, err, tt.want)
			}
			if err == nil && (g.Credential == "" || g.Session.ID == "" || !g.Session.Active) {
				t.Fatalf("grant %+v", g)
			}
		})
	}
	// The maximum duration caps what was asked for.
	g := e.Open(t, e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "long", Duration: "5h"})
	if d := time.Until(g.Session.ExpiresAt); d > time.Hour || d < 59*time.Minute {
		t.Fatalf("a 5h request under a 1h role lasts %v", d)
	}
	// Denials are audited.
	var events []api.AuditEvent
	e.Do(t, e.Client, "GET", "/api/v1/audit?action=access.deny", nil, &events)
	if len(events) < 5 {
		t.Fatalf("%d access.deny events, want one per denial", len(events))
	}
	// An account that requires MFA refuses a user without it.
	e.Do(t, e.Client, "PATCH", "/api/v1/resources/echo/accounts/any", api.AccountUpdate{RequireMFA: ptr(true)}, nil)
	err := e.alice.Do(context.Background(), "POST", "/api/v1/sessions", api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x"}, nil)
	if servertest.Status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "MFA") {
		t.Fatalf("MFA account without MFA: %v", err)
	}
}

// TestAccessThroughRelay opens an access, uses it through the relay and
// the gateway, and checks what the sessions API tells each user of it.
func TestAccessThroughRelay(t *testing.T) {
	e := newAccessEnv(t)
	g := e.Open(t, e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "ticket 7", Duration: "10m"})
	tun := e.Dial(t, g)
	for i := 0; i < 2; i++ { // two connections in one session
		c, err := tun.Open()
		if err != nil {
			t.Fatal(err)
		}
		servertest.Echoes(t, c, strings.Repeat("x", 1000))
		c.Close()
	}
	// The connections are recorded with their bytes, once closed.
	var s api.Session
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s = session(t, e.alice, g.Session.ID)
		if len(s.Connections) == 2 && !s.Connections[1].EndedAt.IsZero() && s.Connections[1].BytesUp > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(s.Connections) != 2 || s.Connections[0].BytesUp != 1000 || s.Connections[0].BytesDown != 1000 || s.ResourceType != "tcp" || s.Reason != "ticket 7" {
		t.Fatalf("session %+v", s)
	}

	var list []api.Session
	e.Do(t, e.alice, "GET", "/api/v1/sessions?active=true", nil, &list)
	if len(list) != 1 || list[0].ID != g.Session.ID {
		t.Fatalf("alice's active sessions: %+v", list)
	}
	e.Do(t, e.bob, "GET", "/api/v1/sessions", nil, &list)
	if len(list) != 0 {
		t.Fatalf("bob sees %d sessions of others", len(list))
	}
	e.Do(t, e.audra, "GET", "/api/v1/sessions", nil, &list)
	if len(list) != 1 {
		t.Fatalf("the auditor sees %d sessions, want 1", len(list))
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name         string
		as           *apiclient.Client
		method, path string
		want         int
	}{
		{"bob reads alice's session", e.bob, "GET", "", 404},
		{"bob terminates alice's session", e.bob, "POST", "/terminate", 404},
		{"the auditor terminates it", e.audra, "POST", "/terminate", 403},
		{"the auditor reads it", e.audra, "GET", "", 200},
		{"records of a tcp session", e.alice, "GET", "/records", 200},
	} {
		err := tt.as.Do(ctx, tt.method, "/api/v1/sessions/"+g.Session.ID+tt.path, nil, nil)
		if got := servertest.Status(err); got != tt.want {
			t.Errorf("%s: status %d (%v), want %d", tt.name, got, err, tt.want)
		}
	}
	if err := e.Client.Do(ctx, "GET", "/api/v1/sessions/nope", nil, nil); servertest.Status(err) != http.StatusNotFound {
		t.Errorf("a missing session: %v", err)
	}

	// Termination by the admin: an open connection is cut and the tunnel
	// hears why.
	c := servertest.Connect(t, tun)
	servertest.Echoes(t, c, "before")
	e.Do(t, e.Client, "POST", "/api/v1/sessions/"+g.Session.ID+"/terminate", nil, nil)
	select {
	case reason := <-tun.Ended():
		if !strings.Contains(reason, "terminated by admin") {
			t.Fatalf("ended: %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not hear of the termination")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("the open connection after termination: %v", err)
	}
	if s := session(t, e.alice, g.Session.ID); s.Active || !strings.Contains(s.EndReason, "terminated by admin") {
		t.Fatalf("session after termination: %+v", s)
	}
	if err := e.Client.Do(ctx, "POST", "/api/v1/sessions/"+g.Session.ID+"/terminate", nil, nil); servertest.Status(err) != http.StatusConflict {
		t.Fatalf("terminating twice: %v", err)
	}
	var events []api.AuditEvent
	e.Do(t, e.audra, "GET", "/api/v1/audit?action=session", nil, &events)
	var got []string
	for _, ev := range events {
		got = append(got, ev.Action)
	}
	if !strings.Contains(strings.Join(got, " "), "session.terminate") {
		t.Fatalf("audit of sessions: %v", got)
	}
}

// TestAccessExpires: a short session ends by itself, the tunnel hears it,
// and its credential no longer opens anything.
func TestAccessExpires(t *testing.T) {
	e := newAccessEnv(t)
	g := e.Open(t, e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "brief", Duration: "1500ms"})
	tun := e.Dial(t, g)
	servertest.Echoes(t, servertest.Connect(t, tun), "while it lasts")
	select {
	case reason := <-tun.Ended():
		if reason != "expired" {
			t.Fatalf("ended: %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not expire")
	}
	if s := session(t, e.alice, g.Session.ID); s.Active || s.EndReason != "expired" {
		t.Fatalf("session after expiry: %+v", s)
	}
	// The credential of an ended session opens no tunnel.
	if _, err := localDial(e, g); err == nil {
		t.Fatal("a tunnel opened for an expired session")
	}
}

// TestAccessSurvivesServerRestart: an active session is restored when the
// server starts again; the gateway reconnects by itself; a new tunnel for
// the same session relays again.
func TestAccessSurvivesServerRestart(t *testing.T) {
	e := newAccessEnv(t)
	g := e.Open(t, e.alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "restart", Duration: "10m"})
	e.RestartServer(t)
	e.WaitGateway(t, true)
	if s := session(t, e.alice, g.Session.ID); !s.Active {
		t.Fatalf("session after restart: %+v", s)
	}
	servertest.Echoes(t, servertest.Connect(t, e.Dial(t, g)), "after the restart")
}

// TestAccessGatewayOffline: no access is granted while the resource's
// gateway is away.
func TestAccessGatewayOffline(t *testing.T) {
	e := newAccessEnv(t)
	if err := e.StopGateway(); err != nil {
		t.Fatal(err)
	}
	e.WaitGateway(t, false)
	err := e.alice.Do(context.Background(), "POST", "/api/v1/sessions", api.CreateSessionRequest{Resource: "echo", Account: "any", Reason: "x"}, nil)
	if servertest.Status(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("access through an offline gateway: %v", err)
	}
	var gws []api.Gateway
	e.Do(t, e.Client, "GET", "/api/v1/gateways", nil, &gws)
	if len(gws) != 1 || gws[0].Online || gws[0].LastSeen.IsZero() {
		t.Fatalf("gateways: %+v", gws)
	}
}

func localDial(e *accessEnv, g *api.SessionGrant) (*local.Tunnel, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tun, err := local.Dial(ctx, local.Config{Server: e.Addr, Fingerprint: e.Fingerprint, SessionID: g.Session.ID, Credential: g.Credential})
	if err == nil {
		tun.End()
	}
	return tun, err
}
