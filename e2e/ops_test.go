package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
)

// What an operator runs against a real server: health and readiness,
// metrics, the access log, hot backups and restores, a rolled-back store
// told by its audit head, master-key rotation interrupted by a kill, and a
// full disk.

// newOpsEnv is newEnv with the server's --metrics-listen on its own port.
func newOpsEnv(t *testing.T, extraEnv ...string) (*env, string) {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(e.dir, "cli")
	ops := freePort(t)
	e.startServer(append([]string{"PAMD_METRICS_LISTEN=" + ops}, extraEnv...)...)
	e.login("admin", adminPassword)
	e.startGateway("gw1")
	return e, "http://" + ops
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric is the value of the first sample of name whose labels hold every
// one of labels, or -1.
func metric(body, name string, labels ...string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if !match {
			continue
		}
		var v float64
		fields := strings.Fields(line)
		fmt.Sscan(fields[len(fields)-1], &v)
		return v
	}
	return -1
}

func TestOpsHealthMetricsAndAccessLog(t *testing.T) {
	t.Parallel()
	e, ops := newOpsEnv(t)
	if code, body := httpGet(t, ops+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, ops+"/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, _ := httpGet(t, e.url+"/readyz"); code != 200 {
		t.Fatalf("/readyz on the main port: %d", code)
	}
	if code, _ := httpGet(t, e.url+"/metrics"); code != http.StatusUnauthorized {
		t.Fatalf("/metrics on the main port without a token: %d, want 401", code)
	}
	_, before := httpGet(t, ops+"/metrics")
	if metric(before, "pamd_gateway_online", `gateway="gw1"`) != 1 {
		t.Fatalf("gw1 is not online in the metrics:\n%s", grepLines(before, "pamd_gateway"))
	}

	e.addEcho("opsecho", "app", "ops-echo-password-1")
	c := e.connect("opsecho/app")
	for range 3 {
		conn, err := net.Dial("tcp", c.addr())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(strings.Repeat("x", 1000)))
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	if _, _, err := e.runEnv([]string{"PAMD_CONFIG_DIR=" + filepath.Join(e.dir, "other-cli")}, "wrong-password-x\n",
		"login", "--server", e.url, "--user", "admin", "--password-stdin", "--ca-fingerprint", e.fp); err == nil {
		t.Fatal("a login with a wrong password worked")
	}
	var after string
	e.waitFor("connection metrics", 10*time.Second, func() bool {
		_, after = httpGet(t, ops+"/metrics")
		return metric(after, "pamd_connection_bytes_total", `type="tcp"`, `direction="up"`) >= 3000
	})
	checks := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"pamd_sessions_opened_total", []string{`type="tcp"`}, 1},
		{"pamd_sessions_active", nil, 1},
		{"pamd_connections_total", []string{`type="tcp"`, `outcome="ok"`}, 3},
		{"pamd_connection_bytes_total", []string{`type="tcp"`, `direction="down"`}, 3000},
		{"pamd_connection_setup_seconds_count", []string{`type="tcp"`}, 3},
		{"pamd_logins_total", []string{`outcome="success"`}, 1},
		{"pamd_logins_total", []string{`outcome="failure"`}, 1},
		{"pamd_store_transaction_seconds_count", []string{`kind="write"`}, 1},
		{"pamd_gateway_spool_records", []string{`gateway="gw1"`}, 0},
	}
	for _, ch := range checks {
		if v := metric(after, ch.name, ch.labels...); v < ch.min {
			t.Errorf("%s%v = %v, want at least %v", ch.name, ch.labels, v, ch.min)
		}
	}
	// One access line per request, with the route and never a secret.
	log := e.server.stderr.String()
	if !regexp.MustCompile(`msg=api route="POST /api/v1/sessions" status=201 user=admin`).MatchString(log) {
		t.Errorf("no access log line for the session request:\n%s", grepLines(log, "msg=api"))
	}
	if !regexp.MustCompile(`msg=api route="POST /api/v1/auth/login" status=401 user=-`).MatchString(log) {
		t.Errorf("no access log line for the failed login:\n%s", grepLines(log, "msg=api"))
	}
	for _, secret := range []string{adminPassword, "ops-echo-password-1", "wrong-password-x"} {
		if strings.Contains(log, secret) {
			t.Errorf("the server log holds %q", secret)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A backup taken during writes restores into a working server with
// everything in it; a store restored from a copy older than the head an
// operator kept fails pamd audit verify --expect.
func TestOpsBackupRestoreAndRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("bkecho", "app", "backup-echo-password-1")
	c := e.connect("bkecho/app")
	conn, err := net.Dial("tcp", c.addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	io.ReadFull(conn, make([]byte, 4))
	conn.Close()
	oldHead := strings.TrimSpace(e.ok("", "audit", "head"))
	if !regexp.MustCompile(`^\d+:[0-9a-f]{64}$`).MatchString(oldHead) {
		t.Fatalf("audit head printed %q", oldHead)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes while the backup runs
		defer wg.Done()
		for i := range 5 {
			e.run("", "roles", "add", fmt.Sprintf("during-%d", i), "--allow", "bkecho/*")
		}
	}()
	copyFile := filepath.Join(e.dir, "copy.db")
	out := e.ok("", "backup", "--out", copyFile)
	wg.Wait()
	if !strings.Contains(out, "backup of ") {
		t.Fatalf("backup said %q", out)
	}
	if fi, err := os.Stat(copyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if msg := e.fails("", "backup", "--out", copyFile); !strings.Contains(msg, "exists") {
		t.Fatalf("a second backup over the first: %q", msg)
	}
	e.ok("", "roles", "add", "after-backup", "--allow", "bkecho/*")
	newHead := strings.TrimSpace(e.ok("", "audit", "head"))
	e.ok("", "audit", "verify", "--expect", newHead)

	// Restore: a new data dir with the copy and the same master key.
	restored := &env{t: t, dir: t.TempDir(), addr: freePort(t), fp: e.fp}
	restored.url = "https://" + restored.addr
	restored.configDir = filepath.Join(restored.dir, "cli")
	dataDir := filepath.Join(restored.dir, "server")
	os.MkdirAll(dataDir, 0o700)
	mustCopy(t, copyFile, filepath.Join(dataDir, "pamd.db"))
	mustCopy(t, filepath.Join(e.dir, "server", "master.key"), filepath.Join(dataDir, "master.key"))
	restored.startServer()
	restored.login("admin", adminPassword)
	if out := restored.ok("", "resources", "list"); !strings.Contains(out, "bkecho") {
		t.Fatalf("the restored server has no resource bkecho:\n%s", out)
	}
	if out := restored.ok("", "accounts", "list", "bkecho"); !strings.Contains(out, "app") {
		t.Fatalf("the restored server has no account bkecho/app:\n%s", out)
	}
	var sessions []struct {
		ID          string `json:"id"`
		Connections int    `json:"connections"`
	}
	restored.json(&sessions, "sessions", "list", "-o", "json")
	if len(sessions) == 0 {
		t.Fatal("the restored server has no sessions")
	}
	restored.ok("", "audit", "verify")
	restored.ok("", "audit", "verify", "--expect", oldHead)
	msg := restored.fails("", "audit", "verify", "--expect", newHead)
	if !strings.Contains(msg, "rolled back") {
		t.Fatalf("verify --expect of a newer head on the older copy: %q", msg)
	}
	if msg := restored.fails("", "audit", "verify", "--expect", "nonsense"); !strings.Contains(msg, "64 hex digits") {
		t.Fatalf("a malformed --expect: %q", msg)
	}
}

func mustCopy(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A rotation killed before it commits leaves a store that opens with the
// old key only; run again, it finishes, and the server starts with the new
// key only.
func TestOpsRotateMasterKeyKilledMidway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addEcho("keyecho", "app", "rekey-echo-password-1")
	e.stopServer()
	dataDir := filepath.Join(e.dir, "server")
	newKey := filepath.Join(e.dir, "new.key")
	p := e.start([]string{"PAMD_TEST_PAUSE_ROTATION=rekey"}, "server", "rotate-master-key", "--data-dir", dataDir, "--new-key-file", newKey)
	e.waitFor("the rotation paused before its commit", 15*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "paused for a test")
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the new key file: %v %v", fi, err)
	}
	// Killed before the commit: the old key (the default file) still opens it.
	e.startServer()
	if out := e.ok("", "resources", "list"); !strings.Contains(out, "keyecho") {
		t.Fatalf("after the killed rotation: %s", out)
	}
	e.stopServer()
	out := e.ok("", "server", "rotate-master-key", "--data-dir", dataDir, "--new-key-file", newKey)
	if !strings.Contains(out, "now opens with the new key") {
		t.Fatalf("rotation said %q", out)
	}
	out = e.ok("", "server", "rotate-master-key", "--data-dir", dataDir, "--new-key-file", newKey)
	if !strings.Contains(out, "already opens with the new key") {
		t.Fatalf("a second run said %q", out)
	}
	// The old key no longer opens the store.
	cmd := exec.Command(pamdBin, "server", "--data-dir", dataDir, "--listen", freePort(t))
	cmd.Env = append(os.Environ(), "PAMD_ADMIN_PASSWORD="+adminPassword)
	failed, _ := cmd.CombinedOutput()
	if !strings.Contains(string(failed), "master key does not open") {
		t.Fatalf("the server with the old key: %s", failed)
	}
	e.startServer("PAMD_MASTER_KEY_FILE=" + newKey)
	if out := e.ok("", "resources", "list"); !strings.Contains(out, "keyecho") {
		t.Fatalf("with the new key: %s", out)
	}
	if strings.Contains(e.allOutput(), strings.TrimSpace(readFile(t, newKey))) {
		t.Fatal("the new master key was printed")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// On a full disk a change is refused with a message that says so, the
// server stays up and not ready, and once there is room it works again
// with nothing lost. The disk is a tmpfs the test mounts and unmounts.
func TestOpsFullDisk(t *testing.T) {
	t.Parallel()
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "pamd-e2e-full", disk).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs for the data dir: %v %s", err, out)
	}
	e := &env{t: t, dir: disk, addr: freePort(t)}
	t.Cleanup(func() {
		// After the env's processes stopped (cleanups run last first).
		if out, err := exec.Command("umount", "-l", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", disk, err, out)
		}
	})
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(t.TempDir(), "cli")
	ops := freePort(t)
	e.startServer("PAMD_METRICS_LISTEN=" + ops)
	e.login("admin", adminPassword)
	e.ok("", "roles", "add", "before-full", "--allow", "x/*")
	filler := filepath.Join(disk, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 16<<20)) // fills the 8 MiB disk; the short write is the point
	f.Close()
	var msg string
	e.waitFor("a write refused for the full disk", 20*time.Second, func() bool {
		_, msg, _ = e.run("", "roles", "add", fmt.Sprintf("during-full-%d", time.Now().UnixNano()), "--allow", strings.Repeat("y", 60)+"/*",
			"--description", strings.Repeat("d", 900))
		return strings.Contains(msg, "cannot write its data (disk full?)")
	})
	if !strings.HasPrefix(strings.TrimSpace(msg), "pamd: the server cannot write its data (disk full?)") {
		t.Fatalf("the full disk reached the user as %q", msg)
	}
	if code, body := httpGet(t, "http://"+ops+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "disk full") {
		t.Fatalf("/readyz on a full disk: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+ops+"/healthz"); code != 200 {
		t.Fatalf("/healthz on a full disk: %d", code)
	}
	os.Remove(filler)
	e.waitFor("ready again", 10*time.Second, func() bool { code, _ := httpGet(t, "http://"+ops+"/readyz"); return code == 200 })
	e.ok("", "roles", "add", "after-full", "--allow", "x/*")
	out := e.ok("", "roles", "list")
	for _, r := range []string{"before-full", "after-full"} {
		if !strings.Contains(out, r) {
			t.Errorf("role %s is missing after the full disk:\n%s", r, out)
		}
	}
	e.ok("", "audit", "verify")
}

// SIGHUP makes the server read --tls-cert/--tls-key again: new handshakes
// get the new certificate, a pamd connect tunnel opened before keeps
// working, and a pair that does not load leaves the served one in place.
func TestOpsSIGHUPReloadsTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caKey, _ := pki.NewKey()
	caDER, err := pki.NewCA("reload test CA", caKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	issue := func() *big.Int {
		key, _ := pki.NewKey()
		der, err := pki.Issue(caCert, caKey, key.Public(), pki.Leaf{CommonName: "pamd reload", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			Server: true, Usage: x509.ExtKeyUsageServerAuth, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, _ := pki.EncodeKey(key)
		os.WriteFile(certFile, append(pki.EncodeCert(der), pki.EncodeCert(caDER)...), 0o600)
		os.WriteFile(keyFile, keyPEM, 0o600)
		leaf, _ := x509.ParseCertificate(der)
		return leaf.SerialNumber
	}
	first := issue()
	e := &env{t: t, dir: dir, addr: freePort(t)}
	e.url = "https://" + e.addr
	e.configDir = filepath.Join(dir, "cli")
	e.startServer("PAMD_TLS_CERT="+certFile, "PAMD_TLS_KEY="+keyFile)
	e.login("admin", adminPassword)
	e.startGateway("gw1")
	served := func() *big.Int {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	if served().Cmp(first) != 0 {
		t.Fatal("the server does not serve --tls-cert")
	}
	e.addEcho("tlsecho", "app", "tls-echo-password-1")
	c := e.connect("tlsecho/app")
	echo := func() {
		t.Helper()
		conn, err := net.Dial("tcp", c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("ping"))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
			t.Fatalf("echo through the tunnel: %v", err)
		}
	}
	echo()
	second := issue()
	e.server.cmd.Process.Signal(syscall.SIGHUP)
	e.waitFor("the reload", 10*time.Second, func() bool { return served().Cmp(second) == 0 })
	echo() // the tunnel opened before the reload
	e.ok("", "whoami")
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	e.server.cmd.Process.Signal(syscall.SIGHUP)
	e.waitFor("the refused reload logged", 10*time.Second, func() bool {
		return strings.Contains(e.server.stderr.String(), "TLS certificate not reloaded")
	})
	if served().Cmp(second) != 0 {
		t.Fatal("a pair that does not load replaced the served certificate")
	}
	echo()
}

// --audit-anchor writes the audit head to a file as it moves and when the
// server stops; the last head written is the store's, and verifies.
func TestOpsAuditAnchorFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	anchor := filepath.Join(e.dir, "anchor.jsonl")
	e.stopServer()
	e.startServer("PAMD_AUDIT_ANCHOR="+anchor, "PAMD_AUDIT_ANCHOR_EVERY=100ms")
	e.login("admin", adminPassword)
	last := func() string {
		b, _ := os.ReadFile(anchor)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var l struct{ Head string }
		json.Unmarshal([]byte(lines[len(lines)-1]), &l)
		return l.Head
	}
	e.ok("", "roles", "add", "anchored", "--allow", "x/*")
	head := strings.TrimSpace(e.ok("", "audit", "head"))
	seqOf := func(h string) int {
		n, _ := strconv.Atoi(strings.Split(h, ":")[0])
		return n
	}
	// The head moves on meanwhile (the gateway's events): the anchor keeps
	// up with it, and what it wrote is in the chain.
	e.waitFor("the anchor to reach the head "+head, 10*time.Second, func() bool { return seqOf(last()) >= seqOf(head) })
	e.ok("", "audit", "verify", "--expect", last())
	if fi, err := os.Stat(anchor); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("anchor file: %v, %v", fi, err)
	}
	// An anchor that cannot be written stops the start with a reason.
	e.stopServer()
	p := e.start(e.serverEnv(), "server", "--data-dir", filepath.Join(e.dir, "server"), "--listen", e.addr, "--audit-anchor", filepath.Join(e.dir, "no", "dir", "a"))
	<-p.done
	if p.err == nil || !strings.Contains(p.stderr.String(), "--audit-anchor") {
		t.Fatalf("a server with an unwritable anchor: %v\n%s", p.err, p.stderr.String())
	}
}
