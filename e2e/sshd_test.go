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
	"strconv"
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
	*sshKeys
}

const (
	sshPassword   = "Target-Pass-e2e-1"
	keyPassphrase = "key-pass-e2e-1"
)

// sshUser is the target's user for every SSH test of this run: made by the
// first sshd a test starts, removed when the test binary ends (TestMain).
// The tests share the user but none of its files: each test's keys are in
// an authorized keys file of the test's own (sshKeys), which only its sshds
// read. A test that has pamd rotate a credential does it on users of its
// own (rotationUsers): a key rotation rewrites the account's
// ~/.ssh/authorized_keys, and would drop the keys of any other test there.
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

// sshUserMu guards sshUser's creation (ensureUser).
var sshUserMu sync.Mutex

// ensureUser creates sshUser, with its password and a ~/.ssh for the
// tests' files, the first time a test asks, and returns it.
func ensureUser(t *testing.T) *user.User {
	sshUserMu.Lock()
	defer sshUserMu.Unlock()
	if _, err := user.Lookup(sshUser); err != nil {
		if err := createSystemUser(sshUser, sshPassword); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Lookup(sshUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := mkdirOwned(u, filepath.Join(u.HomeDir, ".ssh")); err != nil {
		t.Fatal(err)
	}
	return u
}

// mkdirOwned makes dir if it is not there, owned by u and private to it, as
// sshd's StrictModes wants the directory of authorized keys.
func mkdirOwned(u *user.User, dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	return chownTo(u, dir)
}

func chownTo(u *user.User, path string) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// sshKeys are one test's keys for sshUser, one plain and one protected by
// keyPassphrase, the same for every sshd the test starts (a resource moved
// to a second sshd keeps its accounts). They are authorized in a file of
// the test's own in sshUser's ~/.ssh, written whole before its first sshd
// starts and removed when the test ends. No other test writes that file,
// so nothing another test does can drop these keys or show an sshd the
// file half-written, as the one authorized_keys that all tests rewrote in
// place as they came and went did.
type sshKeys struct {
	keysFile string // the authorized keys file, relative to sshUser's home as AuthorizedKeysFile takes it
	key      string // OpenSSH private key file authorized for sshUser
	keyEnc   string // the same, protected by keyPassphrase
	keyPEM   []byte
	encPEM   []byte
}

// testKeys holds each running test's sshKeys.
var testKeys struct {
	mu sync.Mutex
	of map[*testing.T]*sshKeys
}

// keysOf returns the test's keys, made and authorized on its first call.
func keysOf(t *testing.T) *sshKeys {
	testKeys.mu.Lock()
	defer testKeys.mu.Unlock()
	if k := testKeys.of[t]; k != nil {
		return k
	}
	k := newSSHKeys(t, ensureUser(t))
	if testKeys.of == nil {
		testKeys.of = map[*testing.T]*sshKeys{}
	}
	testKeys.of[t] = k
	t.Cleanup(func() {
		testKeys.mu.Lock()
		defer testKeys.mu.Unlock()
		delete(testKeys.of, t)
	})
	return k
}

func newSSHKeys(t *testing.T, u *user.User) *sshKeys {
	dir := t.TempDir()
	k := &sshKeys{keysFile: ".ssh/authorized_keys.e2e-" + randomID(6), key: filepath.Join(dir, "id"), keyEnc: filepath.Join(dir, "id_enc")}
	var pub, pubEnc string
	k.keyPEM, pub = newKey(t, "")
	k.encPEM, pubEnc = newKey(t, keyPassphrase)
	os.WriteFile(k.key, k.keyPEM, 0o600)
	os.WriteFile(k.keyEnc, k.encPEM, 0o600)
	file := filepath.Join(u.HomeDir, k.keysFile)
	t.Cleanup(func() {
		if err := os.Remove(file); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing %s: %v", file, err)
		}
	})
	if err := os.WriteFile(file, []byte(pub+pubEnc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chownTo(u, file); err != nil {
		t.Fatal(err)
	}
	return k
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
	s := &sshd{t: t, dir: t.TempDir(), sshKeys: keysOf(t)}
	s.addr = freePort(t)
	os.MkdirAll("/run/sshd", 0o755)
	s.newHostKey()
	s.config, s.pidFile, s.log = filepath.Join(s.dir, "sshd_config"), filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "sshd.log")
	host, port, _ := net.SplitHostPort(s.addr)
	// The usual file first: the users of a rotation test have theirs there.
	cfg := fmt.Sprintf("Port %s\nListenAddress %s\nHostKey %s\nPidFile %s\nAuthorizedKeysFile .ssh/authorized_keys %s\nUsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\nMaxStartups 500\nMaxSessions 500\n",
		port, host, filepath.Join(s.dir, "hostkey"), s.pidFile, s.keysFile)
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
	e.addSSHResource(s, name)
	e.ok(sshPassword+"\n", "accounts", "add", name+"/pw", "--username", sshUser, "--password-stdin")
	e.ok("", "accounts", "add", name+"/key", "--username", sshUser, "--auth", "key", "--private-key-file", s.key)
	e.ok(keyPassphrase+"\n", "accounts", "add", name+"/enc", "--username", sshUser, "--auth", "key", "--private-key-file", s.keyEnc, "--passphrase-stdin")
	e.ok("", "accounts", "add", name+"/cert", "--username", sshUser, "--auth", "certificate")
}

// addSSHResource registers the sshd as resource name, its host key pinned.
func (e *env) addSSHResource(s *sshd, name string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	out := e.ok("", "resources", "add", "--type", "ssh", "--name", name, "--gateway", "gw1", "--host", host, "--port", port)
	if !strings.Contains(out, "pinned the target's SSH host key SHA256:") {
		e.t.Fatalf("no pinned host key: %s", out)
	}
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
