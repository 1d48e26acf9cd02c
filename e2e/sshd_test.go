package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshd is a real OpenSSH server started by a test, on loopback, for the
// local user sshUser with password sshPassword and the test's keys.
type sshd struct {
	t       *testing.T
	dir     string
	addr    string
	config  string
	pidFile string
	log     string
	key     string // OpenSSH private key file authorized for sshUser
	keyEnc  string // the same, protected by keyPassphrase
	keyPEM  []byte
	encPEM  []byte
}

const (
	sshPassword   = "Target-Pass-e2e-1"
	keyPassphrase = "key-pass-e2e-1"
)

// sshUser is the target's user for every SSH test of this run: made by the
// first sshd a test starts, removed when the test binary ends (TestMain).
var sshUser = systemName(randomID(3), "ssh")

// needPeers skips (or, under scripts/test, fails) when a real server
// cannot be run here.
func needPeers(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
		t.Fatalf("%s is required (scripts/test installs it)", what)
	}
	t.Skipf("%s not available; scripts/test installs it", what)
}

func newKey(t *testing.T, passphrase string) (privPEM []byte, authorized string) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	var block *pem.Block
	var err error
	if passphrase != "" {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "pamd-e2e", []byte(passphrase))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "pamd-e2e")
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	return pem.EncodeToMemory(block), string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

// sshUserMu guards sshUser's creation and its authorized_keys, which the
// sshds of tests running in parallel share.
var sshUserMu sync.Mutex

// ensureUser creates sshUser once per run and sets its password, and adds
// the keys to its authorized_keys until the test ends.
func ensureUser(t *testing.T, authorizedKeys string) {
	sshUserMu.Lock()
	defer sshUserMu.Unlock()
	if _, err := user.Lookup(sshUser); err != nil {
		if err := createSystemUser(sshUser, sshPassword); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := userDB(sshUser+":"+sshPassword+"\n", "chpasswd"); err != nil {
		t.Fatalf("chpasswd: %v %s", err, out)
	}
	u, _ := user.Lookup(sshUser)
	dir := filepath.Join(u.HomeDir, ".ssh")
	os.MkdirAll(dir, 0o700)
	// Append: tests running at once, or a test with two sshds, share the
	// user; each test's keys leave with it.
	editAuthorizedKeys(dir, func(lines []string) []string {
		return append(lines, strings.Split(strings.TrimSpace(authorizedKeys), "\n")...)
	})
	exec.Command("chown", "-R", sshUser+":", dir).Run()
	os.Chmod(dir, 0o700)
	t.Cleanup(func() {
		sshUserMu.Lock()
		defer sshUserMu.Unlock()
		editAuthorizedKeys(dir, func(lines []string) []string {
			return slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(authorizedKeys, l) })
		})
	})
}

// editAuthorizedKeys rewrites sshUser's authorized_keys (in dir) with
// edit's lines, with sshUserMu held. It stays short: far more lines than
// sshds that run at once.
func editAuthorizedKeys(dir string, edit func([]string) []string) {
	file := filepath.Join(dir, "authorized_keys")
	old, _ := os.ReadFile(file)
	lines := slices.DeleteFunc(strings.Split(string(old), "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
	lines = edit(lines)
	if len(lines) > 64 {
		lines = lines[len(lines)-64:]
	}
	os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// removeSSHUser removes sshUser at the end of the run, if a test made it.
func removeSSHUser() {
	if os.Geteuid() == 0 {
		removeSystemUser(nil, sshUser)
	}
}

func startSSHD(t *testing.T) *sshd {
	_, err := os.Stat("/usr/sbin/sshd")
	needPeers(t, "OpenSSH sshd (root and /usr/sbin/sshd)", err == nil && os.Geteuid() == 0)
	s := &sshd{t: t, dir: t.TempDir()}
	s.addr = freePort(t)
	os.MkdirAll("/run/sshd", 0o755)
	var pub1, pub2 string
	s.keyPEM, pub1 = newKey(t, "")
	s.encPEM, pub2 = newKey(t, keyPassphrase)
	s.key, s.keyEnc = filepath.Join(s.dir, "id"), filepath.Join(s.dir, "id_enc")
	os.WriteFile(s.key, s.keyPEM, 0o600)
	os.WriteFile(s.keyEnc, s.encPEM, 0o600)
	ensureUser(t, pub1+pub2)
	s.newHostKey()
	s.config, s.pidFile, s.log = filepath.Join(s.dir, "sshd_config"), filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "sshd.log")
	host, port, _ := net.SplitHostPort(s.addr)
	cfg := fmt.Sprintf("Port %s\nListenAddress %s\nHostKey %s\nPidFile %s\nUsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\nMaxStartups 500\nMaxSessions 500\n",
		port, host, filepath.Join(s.dir, "hostkey"), s.pidFile)
	os.WriteFile(s.config, []byte(cfg), 0o600)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *sshd) newHostKey() {
	p, _ := newKey(s.t, "")
	os.WriteFile(filepath.Join(s.dir, "hostkey"), p, 0o600)
}

func (s *sshd) start() {
	s.t.Helper()
	out, err := exec.Command("/usr/sbin/sshd", "-f", s.config, "-E", s.log).CombinedOutput()
	if err != nil {
		s.t.Fatalf("sshd: %v %s", err, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen on %s", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *sshd) stop() {
	b, err := os.ReadFile(s.pidFile)
	if err != nil {
		return
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.Remove(s.pidFile)
}

func (s *sshd) restart() { s.stop(); s.start() }

// addSSH registers the sshd as resource name with the four kinds of account:
// pw, key, enc (passphrase-protected key) and cert.
func (e *env) addSSH(s *sshd, name string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	out := e.ok("", "resources", "add", "--type", "ssh", "--name", name, "--gateway", "gw1", "--host", host, "--port", port)
	if !strings.Contains(out, "pinned the target's SSH host key SHA256:") {
		e.t.Fatalf("no pinned host key: %s", out)
	}
	e.ok(sshPassword+"\n", "accounts", "add", name+"/pw", "--username", sshUser, "--password-stdin")
	e.ok("", "accounts", "add", name+"/key", "--username", sshUser, "--auth", "key", "--private-key-file", s.key)
	e.ok(keyPassphrase+"\n", "accounts", "add", name+"/enc", "--username", sshUser, "--auth", "key", "--private-key-file", s.keyEnc, "--passphrase-stdin")
	e.ok("", "accounts", "add", name+"/cert", "--username", sshUser, "--auth", "certificate")
}

// trustCA runs the resource's real setup script against this sshd.
func (e *env) trustCA(s *sshd, name string) string {
	e.t.Helper()
	script := filepath.Join(s.dir, "setup.sh")
	os.WriteFile(script, []byte(e.ok("", "resources", "ssh-ca", name, "--setup-script")), 0o700)
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "PAMD_CA_FILE="+filepath.Join(s.dir, "pamd_ca.pub"), "SSHD_CONFIG="+s.config, "SSHD_PID_FILE="+s.pidFile)
	restarts := s.listening()
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("setup script: %v\n%s", err, out)
	}
	// The script sends sshd SIGHUP: it re-executes itself with the new
	// configuration and logs that it listens again.
	e.waitFor("sshd to restart on SIGHUP", 10*time.Second, func() bool { return s.listening() > restarts })
	return string(out)
}

// listening counts the times sshd said it listens: one per start and per
// restart on SIGHUP.
func (s *sshd) listening() int {
	log, _ := os.ReadFile(s.log)
	return strings.Count(string(log), "Server listening on ")
}
