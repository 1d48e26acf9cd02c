package e2e

import (
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gatewayState is one gateway's row of pamd gateways list -o json.
type gatewayState struct {
	Name          string
	Online        bool
	CertExpiresAt time.Time `json:"cert_expires_at"`
	RevokedAt     time.Time `json:"revoked_at"`
}

func (e *env) gatewayState(name string) gatewayState {
	e.t.Helper()
	var gws []gatewayState
	e.json(&gws, "gateways", "list", "-o", "json")
	for _, g := range gws {
		if g.Name == name {
			return g
		}
	}
	e.t.Fatalf("gateway %s not listed", name)
	return gatewayState{}
}

// echoOnce sends a line through a pamd connect port and reads it back.
func echoOnce(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo through the gateway: %q %v", buf, err)
	}
}

func TestGatewayRevokeCutsItAtOnce(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts a 2 s window.
	e := newEnv(t)
	e.addEcho("echo", "raw", "target-secret-1")
	c := e.connect("echo/raw")
	echoOnce(t, c.addr())
	e.ok("", "gateways", "revoke", "gw1")
	e.waitFor("revoked gateway offline", 2*time.Second, func() bool { return !e.gatewayState("gw1").Online })
}

// TestRevokedGatewayStaysOut: a revoked gateway is refused each time it
// tries again, and after a restart, saying why.
func TestRevokedGatewayStaysOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("", "gateways", "revoke", "gw1")
	e.waitFor("revoked gateway offline", 10*time.Second, func() bool { return !e.gatewayState("gw1").Online })
	// It keeps trying (backoff up to 2 s) and is refused each time, saying why.
	e.waitFor("the refusal in the gateway's log", 10*time.Second, func() bool {
		return strings.Contains(e.gateway.stderr.String(), "revoked")
	})
	// That nothing happens for 4 s is what is tested.
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if e.gatewayState("gw1").Online {
			t.Fatal("a revoked gateway reconnected")
		}
	}
	if g := e.gatewayState("gw1"); g.RevokedAt.IsZero() {
		t.Fatalf("gateways list does not show the revocation: %+v", g)
	}
	if out := e.ok("", "gateways", "list"); !strings.Contains(out, "revoked") {
		t.Fatalf("gateways list:\n%s", out)
	}
	audit := e.ok("", "audit", "list", "--action", "gateway.revoke", "-o", "json")
	if !strings.Contains(audit, `"gw1"`) || !strings.Contains(audit, `"success"`) {
		t.Fatalf("revocation not audited:\n%s", audit)
	}
	// A restart does not help: the certificate on its disk is revoked.
	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	p := e.start(nil, "gateway", "--data-dir", filepath.Join(e.dir, "gw-gw1"))
	e.waitFor("the restarted gateway refused", 10*time.Second, func() bool { return strings.Contains(p.stderr.String(), "revoked") })
	if e.gatewayState("gw1").Online {
		t.Fatal("a revoked gateway reconnected after a restart")
	}
	if errOut := e.fails("", "gateways", "revoke", "no-such-gateway"); !strings.Contains(errOut, "no gateway") {
		t.Fatalf("revoking an unknown gateway: %q", errOut)
	}
}

func TestGatewayTokenForEnrolledNameNeedsReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errOut := e.fails("", "gateways", "token", "--name", "gw1")
	if !strings.Contains(errOut, "already enrolled") || !strings.Contains(errOut, "--replace") {
		t.Fatalf("token for an enrolled name: %q", errOut)
	}
	if !e.gatewayState("gw1").Online {
		t.Fatal("the refused token disturbed the enrolled gateway")
	}
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", "gw1", "--replace", "-o", "json")
	// The token alone revokes nothing: the old gateway works until the new one enrolls.
	time.Sleep(500 * time.Millisecond) // that nothing happens meanwhile is what is tested
	if !e.gatewayState("gw1").Online {
		t.Fatal("a --replace token cut the gateway before anything enrolled with it")
	}
	old := e.gateway
	p := e.start(nil, "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw-gw1-new"))
	e.waitFor("the replacement enrolled", 15*time.Second, func() bool { return strings.Contains(p.stderr.String(), "connected to server") })
	e.waitFor("the replaced gateway refused", 10*time.Second, func() bool {
		return strings.Contains(old.stderr.String(), "not the current one")
	})
	if !e.gatewayState("gw1").Online {
		t.Fatal("the replacement gateway is not online")
	}
	// Traffic goes through the new one.
	e.addEcho("echo", "raw", "target-secret-1")
	echoOnce(t, e.connect("echo/raw").addr())
}

// newShortCertEnv is newEnv with gateway certificates that last 10 s, the
// shortest the server allows.
func newShortCertEnv(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	e.startServer("PAMD_GATEWAY_CERT_LIFETIME=10s")
	e.login("admin", adminPassword)
	e.startGateway("gw1")
	return e
}

func TestGatewayCertificateRenewal(t *testing.T) {
	t.Parallel()
	e := newShortCertEnv(t)
	first := e.gatewayState("gw1").CertExpiresAt
	if first.IsZero() || time.Until(first) > 11*time.Second {
		t.Fatalf("certificate expires %v, want within the configured 10 s", first)
	}
	// Online all along, well past the first certificate's expiry (the
	// certificate's lifetime in real time is what is tested): renewed at
	// each half lifetime, so 3 times at least by then.
	for deadline := time.Now().Add(time.Until(first) + 6*time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if !e.gatewayState("gw1").Online {
			t.Fatalf("gateway went offline at %s (first certificate expired %s)\n%s", time.Now().Format(time.TimeOnly), first.Format(time.TimeOnly), lastLines(e.gateway.stderr.String(), 20))
		}
	}
	if n := strings.Count(e.gateway.stderr.String(), "certificate renewed"); n < 3 {
		t.Fatalf("%d renewals in the gateway's log, want at least 3", n)
	}
	if strings.Contains(e.gateway.stderr.String(), "connection to server lost") {
		t.Fatalf("the gateway reconnected instead of renewing:\n%s", e.gateway.stderr.String())
	}
	if g := e.gatewayState("gw1"); !g.CertExpiresAt.After(first) {
		t.Fatalf("certificate expiry did not move: %v", g.CertExpiresAt)
	}
	e.addEcho("echo", "raw", "target-secret-1")
	echoOnce(t, e.connect("echo/raw").addr())

	// A restart uses the renewed certificate from its data dir.
	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	e.gateway = e.start(nil, "gateway", "--data-dir", filepath.Join(e.dir, "gw-gw1"))
	e.waitGatewayOnline("gw1", 10*time.Second)
}

// TestGatewayOfflinePastExpiryReenrolls: a gateway offline for longer than
// its certificate lasts must re-enroll, and says so.
func TestGatewayOfflinePastExpiryReenrolls(t *testing.T) {
	t.Parallel()
	e := newShortCertEnv(t)
	dataDir := filepath.Join(e.dir, "gw-gw1")
	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	var gw gatewayState
	e.waitFor("gw1 offline", 5*time.Second, func() bool { gw = e.gatewayState("gw1"); return !gw.Online })
	time.Sleep(time.Until(gw.CertExpiresAt) + time.Second) // the expiry is what is tested
	_, errOut, err := e.run("", "gateway", "--data-dir", dataDir)
	if err == nil || !strings.Contains(errOut, "expired") || !strings.Contains(errOut, "re-enroll") || !strings.Contains(errOut, "--replace") {
		t.Fatalf("gateway with an expired certificate: err %v, stderr %q", err, errOut)
	}
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", "gw1", "--replace", "-o", "json")
	e.gateway = e.start(nil, "gateway", "--token", tok.Token, "--data-dir", dataDir)
	e.waitGatewayOnline("gw1", 10*time.Second)
}

// The certificate a gateway list shows is what the server keeps: a sanity
// check that the JSON field names above are the API's.
func TestGatewayListShowsCertificateExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.ok("", "gateways", "list", "-o", "json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw) != 1 || raw[0]["cert_expires_at"] == nil {
		t.Fatalf("gateways list -o json: %s", out)
	}
	if d := time.Until(e.gatewayState("gw1").CertExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("default certificate lifetime: expires in %s, want 24h", d)
	}
}
