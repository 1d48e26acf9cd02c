package e2e

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// caRotation is a CA's row of pamd ca rotate status -o json.
type caRotation struct {
	Type                string
	Fingerprint         string
	NextFingerprint     string `json:"next_fingerprint"`
	PreviousFingerprint string `json:"previous_fingerprint"`
	Gateways            []struct {
		Name   string
		CA     string
		Online bool
	}
}

func (e *env) caRotation(typ string) caRotation {
	e.t.Helper()
	var all []caRotation
	e.json(&all, "ca", "rotate", "status", "-o", "json")
	for _, r := range all {
		if r.Type == typ {
			return r
		}
	}
	e.t.Fatalf("no %s CA in pamd ca rotate status", typ)
	return caRotation{}
}

// savedPins are the CA fingerprints a JSON file (the CLI's login.json, a
// gateway's gateway.json) pins.
func savedPins(t *testing.T, file string) (current, next string) {
	t.Helper()
	var v struct {
		Current string `json:"ca_fingerprint"`
		Next    string `json:"next_ca_fingerprint"`
	}
	b, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(b, &v) != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v.Current, v.Next
}

// openEcho opens a connection through a pamd connect port that stays open
// across the rotation; echo checks it still carries bytes.
func openEcho(t *testing.T, addr string) (echo func()) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("held\n")); err != nil {
			t.Fatalf("the held connection: %v", err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held\n" {
			t.Fatalf("the held connection: %q %v", buf, err)
		}
	}
}

// TestCARotationServerAndGateway: a rotation of the server and gateway CAs
// with a connected gateway and a logged-in CLI across it. At start the CLI
// is told the new fingerprint (once) and the gateway learns it and renews
// onto the next gateway CA while connected (the tunnel and a connection
// through it go on); at complete the server presents its certificate from
// the new CA, the CLI and the gateway go on with the pins they learned (a
// restarted gateway too), a login with the old fingerprint is refused
// naming the new one, and a copy of the gateway holding an old-CA
// certificate is told to enrol again.
func TestCARotationServerAndGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gwDir := filepath.Join(e.dir, "gw-gw1")
	loginFile := filepath.Join(e.configDir, "login.json")
	e.addEcho("echo", "raw", "target-secret-1")
	c := e.connect("echo/raw")
	held := openEcho(t, c.addr())
	held()
	// The gateway as it was (an old-CA certificate, the old server pin),
	// twice: offline through the whole rotation, and (its pin rewritten
	// below) one that followed the server CA but missed the gateway CA's.
	oldCopy, oldCopy2 := t.TempDir(), t.TempDir()
	for _, f := range []string{"gateway.json", "gateway.pem"} {
		b, err := os.ReadFile(filepath.Join(gwDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{oldCopy, oldCopy2} {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A login as it was, not used through the rotation.
	oldLogin := t.TempDir()
	if b, err := os.ReadFile(loginFile); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(oldLogin, "login.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	// Start: the CLI learns the next server CA from the answer itself.
	out, errOut, err := e.run("", "ca", "rotate", "start", "--type", "server")
	if err != nil {
		t.Fatalf("rotate start: %v\n%s%s", err, out, errOut)
	}
	next := e.caRotation("server").NextFingerprint
	if next == "" || next == e.fp {
		t.Fatalf("no next server CA after start: %q", next)
	}
	want := "pamd: the server's CA is being rotated; its new fingerprint is " + next + ", now trusted too"
	if !strings.Contains(errOut, want) {
		t.Fatalf("the CLI was not told the new fingerprint:\nstdout: %s\nstderr: %s", out, errOut)
	}
	if cur, n := savedPins(t, loginFile); cur != e.fp || n != next {
		t.Fatalf("login pins %s, %s; want %s, %s", cur, n, e.fp, next)
	}
	if _, errOut, _ := e.run("", "whoami"); strings.Contains(errOut, "being rotated") {
		t.Fatalf("told twice: %s", errOut)
	}
	e.waitFor("the gateway pins the next server CA", 15*time.Second, func() bool {
		_, n := savedPins(t, filepath.Join(gwDir, "gateway.json"))
		return n == next
	})

	e.ok("", "ca", "rotate", "start", "--type", "gateway")
	e.waitFor("the gateway renewed onto the next gateway CA", 15*time.Second, func() bool {
		r := e.caRotation("gateway")
		return len(r.Gateways) == 1 && r.Gateways[0].CA == "next" && r.Gateways[0].Online
	})
	if out := e.ok("", "ca", "rotate", "status"); !strings.Contains(out, "gw1") || !strings.Contains(out, "next") {
		t.Fatalf("pamd ca rotate status:\n%s", out)
	}
	held()
	echoOnce(t, c.addr())

	// Complete both: the server's certificate now comes from the new CA.
	e.ok("", "ca", "rotate", "complete", "--type", "server")
	e.ok("", "ca", "rotate", "complete", "--type", "gateway")
	if r := e.caRotation("server"); r.Fingerprint != next || r.NextFingerprint != "" || r.PreviousFingerprint != e.fp {
		t.Fatalf("server CA after complete: %+v", r)
	}
	if cur, n := savedPins(t, loginFile); cur != next || n != "" {
		t.Fatalf("login pins after complete %s, %s; want %s alone", cur, n, next)
	}
	held()
	echoOnce(t, c.addr())
	echoOnce(t, e.connect("echo/raw").addr()) // a new tunnel, to a server on the new CA
	if n := strings.Count(e.gateway.stderr.String(), "connected to server"); n != 1 {
		t.Fatalf("the gateway connected %d times, want once (no reconnect)", n)
	}

	other := []string{"PAMD_CONFIG_DIR=" + t.TempDir()}
	_, errOut, err = e.runEnv(other, adminPassword+"\n", "login", "--server", e.url, "--user", "admin", "--password-stdin", "--ca-fingerprint", e.fp)
	if err == nil || !strings.Contains(errOut, next) || !strings.Contains(errOut, "rotated") {
		t.Fatalf("login with the old fingerprint after complete: %v\n%s", err, errOut)
	}
	if _, errOut, err := e.runEnv(other, adminPassword+"\n", "login", "--server", e.url, "--user", "admin", "--password-stdin", "--ca-fingerprint", next); err != nil {
		t.Fatalf("login with the new fingerprint: %v\n%s", err, errOut)
	}

	// A restarted gateway connects with what it saved: the new pin and
	// certificate.
	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	e.waitFor("gw1 offline", 10*time.Second, func() bool { return !e.gatewayState("gw1").Online })
	e.gateway = e.start(nil, "gateway", "--data-dir", gwDir)
	e.waitGatewayOnline("gw1", 15*time.Second)
	echoOnce(t, e.connect("echo/raw").addr())

	// A login not used through the rotation pins the old CA alone: told
	// to log in again, not just refused.
	if _, errOut, err := e.runEnv([]string{"PAMD_CONFIG_DIR=" + oldLogin}, "", "whoami"); err == nil || !strings.Contains(errOut, "log in again with --ca-fingerprint") {
		t.Fatalf("a login offline through the rotation: %v\n%s", err, errOut)
	}

	// The copy offline through the rotation pins the old server CA alone:
	// its dial fails, saying to enrol it again.
	p := e.start(nil, "gateway", "--data-dir", oldCopy)
	e.waitFor("the gateway offline through complete told to enrol again", 15*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "the server's CA was rotated while this gateway was offline: enrol it again (pamd gateways token --name gw1 --replace)")
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done

	// The copy that pins the new server CA but holds an old-CA
	// certificate: told to enrol anew.
	b, _ := os.ReadFile(filepath.Join(oldCopy2, "gateway.json"))
	os.WriteFile(filepath.Join(oldCopy2, "gateway.json"), []byte(strings.ReplaceAll(string(b), e.fp, next)), 0o600)
	p = e.start(nil, "gateway", "--data-dir", oldCopy2)
	e.waitFor("the old-CA gateway told to re-enroll", 15*time.Second, func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "retired") && strings.Contains(s, "re-enroll")
	})
	if !e.gatewayState("gw1").Online {
		t.Fatal("the refused copy cut the enrolled gateway")
	}
	audit := e.ok("", "audit", "list", "--action", "ca.rotate.complete", "-o", "json")
	if strings.Count(audit, `"success"`) != 2 || !strings.Contains(audit, "now "+next+", was "+e.fp) {
		t.Fatalf("rotation steps not audited:\n%s", audit)
	}
	if all := e.allOutput(); strings.Contains(all, "PRIVATE KEY") {
		t.Fatal("a key in some pamd output")
	}
}

// TestCARotationRollback: a server restart in the overlap keeps it; after
// a rollback of both CAs the next ones are dropped and everything goes on
// as before: the CLI forgets the next pin, the gateway renews back onto
// the current gateway CA and pins the current server CA alone (and
// connects so after a restart).
func TestCARotationRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gwDir := filepath.Join(e.dir, "gw-gw1")
	loginFile := filepath.Join(e.configDir, "login.json")
	e.addEcho("echo", "raw", "target-secret-1")

	e.ok("", "ca", "rotate", "start", "--type", "server")
	e.ok("", "ca", "rotate", "start", "--type", "gateway")
	next := e.caRotation("server").NextFingerprint
	e.waitFor("the gateway on the next CAs", 15*time.Second, func() bool {
		_, n := savedPins(t, filepath.Join(gwDir, "gateway.json"))
		r := e.caRotation("gateway")
		return n == next && len(r.Gateways) == 1 && r.Gateways[0].CA == "next"
	})
	if errOut := e.fails("", "ca", "rotate", "start", "--type", "gateway"); !strings.Contains(errOut, "rotated already") {
		t.Fatalf("a second start: %s", errOut)
	}
	// A restart in the overlap keeps it: the gateway, now on a next-CA
	// certificate, connects again.
	e.stopServer()
	e.startServer()
	if r := e.caRotation("server"); r.NextFingerprint != next {
		t.Fatalf("the server CA's rotation after a restart: %+v", r)
	}
	e.waitGatewayOnline("gw1", 15*time.Second)

	e.ok("", "ca", "rotate", "rollback", "--type", "gateway")
	e.ok("", "ca", "rotate", "rollback", "--type", "server")
	for _, typ := range []string{"server", "gateway"} {
		if r := e.caRotation(typ); r.NextFingerprint != "" || r.PreviousFingerprint != "" {
			t.Fatalf("%s CA after the rollback: %+v", typ, r)
		}
	}
	if r := e.caRotation("server"); r.Fingerprint != e.fp {
		t.Fatalf("the rollback changed the server CA: %s", r.Fingerprint)
	}
	if cur, n := savedPins(t, loginFile); cur != e.fp || n != "" {
		t.Fatalf("login pins after the rollback %s, %s; want %s alone", cur, n, e.fp)
	}
	e.waitFor("the gateway back on the current CAs alone", 15*time.Second, func() bool {
		cur, n := savedPins(t, filepath.Join(gwDir, "gateway.json"))
		return cur == e.fp && n == ""
	})
	if errOut := e.fails("", "ca", "rotate", "complete", "--type", "server"); !strings.Contains(errOut, "not being rotated") {
		t.Fatalf("complete after the rollback: %s", errOut)
	}
	echoOnce(t, e.connect("echo/raw").addr())

	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	e.waitFor("gw1 offline", 10*time.Second, func() bool { return !e.gatewayState("gw1").Online })
	e.gateway = e.start(nil, "gateway", "--data-dir", gwDir)
	e.waitGatewayOnline("gw1", 15*time.Second)
	echoOnce(t, e.connect("echo/raw").addr())
	e.login("admin", adminPassword) // the old fingerprint is still the one
}

// TestCARotationSSHUserCA: during the rotation of a resource's SSH user CA
// its CA line holds both keys (installed by the setup script), the
// current key signs; after complete the new key signs and certificate
// logins go on.
func TestCARotationSSHUserCA(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSHResource(s, "box")
	e.ok("", "accounts", "add", "box/cert", "--username", sshUser, "--auth", "certificate")
	e.trustCA(s, "box")
	login := func() {
		t.Helper()
		if out, errOut, err := e.run("", "ssh", "box/cert", "--", "echo", "in"); err != nil || out != "in\n" {
			t.Fatalf("certificate login: %v %q %q", err, out, errOut)
		}
	}
	login()
	before := strings.TrimSpace(e.ok("", "resources", "ssh-ca", "box"))

	if errOut := e.fails("", "ca", "rotate", "start", "--type", "ssh"); !strings.Contains(errOut, "--resource") {
		t.Fatalf("--type ssh without --resource: %s", errOut)
	}
	out := e.ok("", "ca", "rotate", "start", "--type", "ssh", "--resource", "box")
	if !strings.Contains(out, "rotation started") {
		t.Fatalf("rotate start --type ssh: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(e.ok("", "resources", "ssh-ca", "box")), "\n")
	if len(lines) != 2 || lines[0] != before || !strings.HasSuffix(lines[1], "pamd-ca-next@box") {
		t.Fatalf("the CA lines during the overlap: %q (before: %q)", lines, before)
	}
	if st := e.ok("", "ca", "rotate", "status"); !strings.Contains(st, "ssh (box)") {
		t.Fatalf("status lacks the ssh rotation:\n%s", st)
	}
	login()
	e.trustCA(s, "box") // both keys on the target

	e.ok("", "ca", "rotate", "complete", "--type", "ssh", "--resource", "box")
	after := strings.TrimSpace(e.ok("", "resources", "ssh-ca", "box"))
	if strings.Contains(after, "\n") || strings.Fields(after)[1] != strings.Fields(lines[1])[1] {
		t.Fatalf("the CA line after complete: %q, want the next key %q", after, lines[1])
	}
	login()
	e.trustCA(s, "box") // the new key alone on the target: it is the one that signs
	login()
	log, _ := os.ReadFile(s.log)
	if n := strings.Count(string(log), "Accepted certificate ID"); n < 4 {
		t.Fatalf("%d certificate logins in the sshd log, want 4", n)
	}
}

// TestCARotationGatewayCompleteStrands: complete --type gateway is refused
// while an enrolled gateway still holds a certificate from the current
// gateway CA (here offline through start), naming it; --force completes,
// and that gateway is then told to enrol again; a completed rotation
// cannot be rolled back.
func TestCARotationGatewayCompleteStrands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gwDir := filepath.Join(e.dir, "gw-gw1")
	e.gateway.cmd.Process.Signal(syscall.SIGTERM)
	<-e.gateway.done
	e.waitFor("gw1 offline", 10*time.Second, func() bool { return !e.gatewayState("gw1").Online })

	e.ok("", "ca", "rotate", "start", "--type", "gateway")
	errOut := e.fails("", "ca", "rotate", "complete", "--type", "gateway")
	if !strings.Contains(errOut, "gw1 (offline)") || !strings.Contains(errOut, "--force") {
		t.Fatalf("complete with a gateway on the current CA: %s", errOut)
	}
	if r := e.caRotation("gateway"); r.NextFingerprint == "" {
		t.Fatalf("the refused complete changed the rotation: %+v", r)
	}
	if errOut := e.fails("", "ca", "rotate", "complete", "--type", "server", "--force"); !strings.Contains(errOut, "--force goes with --type gateway") {
		t.Fatalf("--force with --type server: %s", errOut)
	}
	e.ok("", "ca", "rotate", "complete", "--type", "gateway", "--force")
	if errOut := e.fails("", "ca", "rotate", "rollback", "--type", "gateway"); !strings.Contains(errOut, "a completed rotation cannot be rolled back: rotate again") {
		t.Fatalf("rollback after complete: %s", errOut)
	}

	p := e.start(nil, "gateway", "--data-dir", gwDir)
	e.waitFor("the stranded gateway told to re-enroll", 15*time.Second, func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "retired") && strings.Contains(s, "re-enroll")
	})
	audit := e.ok("", "audit", "list", "--action", "ca.rotate.complete", "-o", "json")
	if !strings.Contains(audit, `"failure"`) || !strings.Contains(audit, `"success"`) {
		t.Fatalf("the refused and the forced complete not audited:\n%s", audit)
	}
}
