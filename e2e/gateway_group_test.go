package e2e

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startGroupGateway enrolls a gateway in a gateway group (pamd gateways
// token --group) and starts it, told its group.
func (e *env) startGroupGateway(name, group string) *proc {
	e.t.Helper()
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", name, "--group", group, "-o", "json")
	p := e.start([]string{"PAMD_GATEWAY_GROUP=" + group}, "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw-"+name))
	e.waitGatewayOnline(name, 15*time.Second)
	return p
}

// servedBy is, for each connection of the session by ID, the gateway that
// served it (its record names it), once n connections are recorded.
func (e *env) servedBy(session string, n int) map[string]string {
	e.t.Helper()
	var by map[string]string
	e.waitFor(fmt.Sprintf("%d connections of session %s recorded", n, session), 10*time.Second, func() bool {
		var s struct {
			Connections []struct{ ID, Gateway string }
		}
		e.json(&s, "sessions", "show", session, "-o", "json")
		by = map[string]string{}
		for _, c := range s.Connections {
			by[c.ID] = c.Gateway
		}
		return len(by) >= n
	})
	return by
}

// countBy counts the connections each gateway served.
func countBy(by map[string]string) map[string]int {
	n := map[string]int{}
	for _, gw := range by {
		n[gw]++
	}
	return n
}

// echoConn is a connection through pamd connect's port that echoes.
type echoConn struct{ net.Conn }

func dialEcho(t *testing.T, addr string) echoConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ec := echoConn{c}
	ec.ping(t) // served: its connection is recorded with its gateway
	return ec
}

// ping sends a line and reads it back.
func (c echoConn) ping(t *testing.T) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo through the group: %q %v", buf, err)
	}
}

// echoes says whether the connection still echoes a line (false: it was
// cut).
func (c echoConn) echoes() bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == "ping\n"
}

// TestGatewayGroupSharesConnectionsAndSurvivesAKill: two gateways of a
// group share a resource's connections; killing one cuts only its own, the
// other's keep working, and new connections all go to the survivor.
func TestGatewayGroupSharesConnectionsAndSurvivesAKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gws := map[string]*proc{"ga": e.startGroupGateway("ga", "dc2"), "gb": e.startGroupGateway("gb", "dc2")}
	var listed []struct{ Name, Group string }
	e.json(&listed, "gateways", "list", "-o", "json")
	for _, g := range listed {
		if want := map[string]string{"ga": "dc2", "gb": "dc2", "gw1": ""}[g.Name]; g.Group != want {
			t.Errorf("gateway %s listed in group %q, want %q", g.Name, g.Group, want)
		}
	}
	host, port, _ := net.SplitHostPort(echoServer(t))
	e.fails("", "resources", "add", "--type", "tcp", "--name", "both", "--gateway", "gw1", "--gateway-group", "dc2", "--host", host, "--port", port)
	e.ok("", "resources", "add", "--type", "tcp", "--name", "echo", "--gateway-group", "dc2", "--host", host, "--port", port)
	if out := e.ok("", "resources", "show", "echo"); !strings.Contains(out, "group:    dc2") {
		t.Fatalf("resources show:\n%s", out)
	}
	e.ok("target-secret\n", "accounts", "add", "echo/raw", "--username", "svc", "--password-stdin")

	c := e.connect("echo/raw")
	var conns []echoConn
	for range 6 {
		conns = append(conns, dialEcho(t, c.addr()))
	}
	by := e.servedBy(c.SessionID, 6)
	if n := countBy(by); n["ga"] == 0 || n["gb"] == 0 || n["ga"]+n["gb"] != 6 {
		t.Fatalf("connections by gateway: %v, want both of the group to serve some", n)
	}

	// ga dies: its connections end, gb's go on.
	gws["ga"].cmd.Process.Kill()
	<-gws["ga"].done
	e.waitFor("ga offline", 10*time.Second, func() bool { return !e.gatewayState("ga").Online })
	served := countBy(by)
	ended := 0
	for _, ec := range conns {
		if !ec.echoes() {
			ended++
		}
	}
	if ended != served["ga"] {
		t.Fatalf("%d connections ended with ga, want its %d (and gb's %d kept)", ended, served["ga"], served["gb"])
	}

	// New connections all succeed, through gb.
	for range 4 {
		conns = append(conns, dialEcho(t, c.addr()))
	}
	if n := countBy(e.servedBy(c.SessionID, 10)); n["gb"] != served["gb"]+4 {
		t.Fatalf("connections by gateway: %v, want gb's %d and the 4 new ones", n, served["gb"])
	}

	// Ending the session reaches the group's gateway, which ends its
	// connections (it says so in its log: the server cuts its relays
	// too, so closed connections alone would not show it), and every
	// connection ends, the 4 new ones too.
	e.ok("", "sessions", "terminate", c.SessionID)
	for i, ec := range conns {
		if _, err := waitClosed(ec, 10*time.Second); err != nil {
			t.Fatalf("connection %d after the session ended: %v", i, err)
		}
	}
	notice := fmt.Sprintf("session=%s reason=", c.SessionID)
	e.waitFor("gb told the session ended", 10*time.Second, func() bool {
		for _, line := range strings.Split(gws["gb"].stderr.String(), "\n") {
			if strings.Contains(line, "session ended by the server") && strings.Contains(line, notice) && !strings.Contains(line, "connections=0") {
				return true
			}
		}
		return false
	})
	// The dead gateway names no resource of its group: it goes without a move.
	if out := e.ok("", "gateways", "remove", "ga"); strings.Contains(out, "moved to") {
		t.Fatalf("removing a gateway of the group moved resources: %s", out)
	}
	// A resource moves between a gateway and a group.
	e.ok("", "resources", "set", "echo", "--gateway", "gw1")
	if out := e.ok("", "resources", "show", "echo"); !strings.Contains(out, "gateway:  gw1") || strings.Contains(out, "dc2") {
		t.Fatalf("moved to gw1:\n%s", out)
	}
	e.ok("", "resources", "set", "echo", "--gateway-group", "dc2")
	if out := e.ok("", "resources", "list"); !strings.Contains(out, "dc2") {
		t.Fatalf("moved back to the group:\n%s", out)
	}
	echoOnce(t, e.connect("echo/raw").addr())
}

// TestGatewayGroupRecordsFromBothGateways: one session's ssh connections
// served by the two gateways of a group are all recorded: neither
// gateway's records overwrite the other's.
func TestGatewayGroupRecordsFromBothGateways(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.startGroupGateway("ga", "dc2")
	e.startGroupGateway("gb", "dc2")
	host, port, _ := net.SplitHostPort(s.addr)
	e.ok("", "resources", "add", "--type", "ssh", "--name", "box", "--gateway-group", "dc2", "--host", host, "--port", port)
	e.ok("", "accounts", "add", "box/key", "--username", sshUser, "--auth", "key", "--private-key-file", s.key)
	c := e.connect("box/key")
	kh := knownHosts(t, c)

	// The first connection stays open while the second is made, so the
	// second goes to the other gateway (the one with fewer streams).
	first := exec.Command("ssh", sshArgs(c, kh, "echo first-marker-$((6*7)); read x; true")...)
	stdin, _ := first.StdinPipe()
	out := &syncBuf{}
	first.Stdout = out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the first ssh connection's output", 20*time.Second, func() bool { return strings.Contains(out.String(), "first-marker-42") })
	if b, err := exec.Command("ssh", sshArgs(c, kh, "echo second-marker-$((6*7))")...).CombinedOutput(); err != nil || !strings.Contains(string(b), "second-marker-42") {
		t.Fatalf("second ssh connection: %v %q", err, b)
	}
	stdin.Close()
	if err := first.Wait(); err != nil {
		t.Fatalf("first ssh connection: %v", err)
	}
	if n := countBy(e.servedBy(c.SessionID, 2)); n["ga"] != 1 || n["gb"] != 1 {
		t.Fatalf("connections by gateway: %v, want one each", n)
	}
	e.waitFor("both connections' records", 15*time.Second, func() bool {
		logs := e.ok("", "sessions", "logs", c.SessionID)
		return strings.Contains(logs, "first-marker-42") && strings.Contains(logs, "second-marker-42") && strings.Count(logs, "exit status") >= 2
	})
}

// TestGatewayGroupIsTheAdmins: a gateway is in the group the admin put it
// in, not the one it claims. One enrolled in no group but told
// PAMD_GATEWAY_GROUP=dc2 is refused with what to do, and serves nothing
// of dc2; once pamd gateways set puts it in dc2 it connects and gets new
// connections. A resource naming a group no gateway is in is refused.
func TestGatewayGroupIsTheAdmins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startGroupGateway("ga", "dc2")
	var tok struct{ Token string }
	e.json(&tok, "gateways", "token", "--name", "rogue", "-o", "json")
	rogue := e.start([]string{"PAMD_GATEWAY_GROUP=dc2"}, "gateway", "--token", tok.Token, "--data-dir", filepath.Join(e.dir, "gw-rogue"))
	refusal := "gateway rogue is in no group on the server, not dc2: run pamd gateways set rogue --group dc2, or fix PAMD_GATEWAY_GROUP"
	e.waitFor("rogue refused", 15*time.Second, func() bool { return strings.Contains(rogue.stderr.String(), refusal) })
	if e.gatewayState("rogue").Online {
		t.Fatal("a gateway claiming a group it is not in is online")
	}

	host, port, _ := net.SplitHostPort(echoServer(t))
	if out := e.fails("", "resources", "add", "--type", "tcp", "--name", "typo", "--gateway-group", "dc9", "--host", host, "--port", port); !strings.Contains(out, `no gateway is in group "dc9"`) {
		t.Fatalf("a resource of a group no gateway is in: %s", out)
	}
	e.ok("", "resources", "add", "--type", "tcp", "--name", "echo", "--gateway-group", "dc2", "--host", host, "--port", port)
	e.ok("target-secret\n", "accounts", "add", "echo/raw", "--username", "svc", "--password-stdin")
	c := e.connect("echo/raw")
	for range 3 {
		dialEcho(t, c.addr()) // held open: ga has streams, rogue (later) none
	}
	if n := countBy(e.servedBy(c.SessionID, 3)); n["ga"] != 3 {
		t.Fatalf("connections by gateway: %v, want all 3 through ga", n)
	}

	e.ok("", "gateways", "set", "rogue", "--group", "dc2")
	e.waitGatewayOnline("rogue", 15*time.Second)
	var listed []struct{ Name, Group string }
	e.json(&listed, "gateways", "list", "-o", "json")
	for _, g := range listed {
		if g.Name == "rogue" && g.Group != "dc2" {
			t.Fatalf("rogue listed in group %q, want dc2", g.Group)
		}
	}
	dialEcho(t, c.addr())
	if n := countBy(e.servedBy(c.SessionID, 4)); n["rogue"] != 1 {
		t.Fatalf("connections by gateway: %v, want the new one through rogue", n)
	}
	// Out of the group again: it is cut, and refused while it claims dc2.
	before := strings.Count(rogue.stderr.String(), refusal)
	e.ok("", "gateways", "set", "rogue", "--no-group")
	e.waitFor("rogue refused again", 15*time.Second, func() bool {
		return strings.Count(rogue.stderr.String(), refusal) > before && !e.gatewayState("rogue").Online
	})
}
