package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// What the tests create on the machine itself, outside their temporary
// directories: system users (for sshd) and files in /etc/sudoers.d. Each is
// named with systemPrefix, which nothing but these tests uses, and a random
// part, so that runs never meet; is tagged with the creating process (pid
// and start time); and is removed when its test ends, failed or not (the
// sshd user, which all SSH tests of a run share, when the test binary
// ends). sweepStaleSystemUsers removes what a killed run left behind.
const (
	systemPrefix = "pamde2e-"
	sudoersDir   = "/etc/sudoers.d"
)

// runTag goes into the GECOS field of every user this process creates and
// the first line of its sudoers files: "pamd-e2e pid=N start=T".
var runTag = "pamd-e2e pid=" + fmt.Sprint(os.Getpid()) + " start=" + procStart(os.Getpid())

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// systemName is a user (or file) name for role: systemPrefix, the random
// id, the role. Linux user names are at most 32 characters; the roles are
// the tests' own constants, so a longer one is the test's bug.
func systemName(id, role string) string {
	name := systemPrefix + id + "-" + role
	if len(name) > 32 {
		panic(fmt.Sprintf("user name %q is longer than 32 characters", name))
	}
	return name
}

// createSystemUser adds a user with a home directory, a login shell and
// the password, under a password policy of its own: whatever the machine's
// /etc/login.defs says (PASS_MIN_DAYS, PASS_MAX_DAYS), the user may change
// its password right away and it never expires, so passwd run by the user
// itself (self-rotation) does not depend on the host.
func createSystemUser(name, password string) error { return createTaggedUser(name, password, runTag) }

func createTaggedUser(name, password, tag string) error {
	if out, err := userDB("", "useradd", "-m", "-s", "/bin/bash", "-c", tag, name); err != nil {
		return fmt.Errorf("useradd %s: %v %s", name, err, out)
	}
	if out, err := userDB(name+":"+password+"\n", "chpasswd"); err != nil {
		return fmt.Errorf("chpasswd %s: %v %s", name, err, out)
	}
	if out, err := userDB("", "chage", "-m", "0", "-M", "-1", "-I", "-1", "-E", "-1", name); err != nil {
		return fmt.Errorf("chage %s: %v %s", name, err, out)
	}
	return nil
}

// userDBMu makes this process's changes to the user database one at a
// time: tests run in parallel, and useradd, chpasswd, chage and userdel
// each lock /etc/passwd and /etc/shadow for themselves, waiting in steps
// of a second when another holds them.
var userDBMu sync.Mutex

// userDB runs one of those tools with stdin and returns its output.
func userDB(stdin, name string, args ...string) ([]byte, error) {
	userDBMu.Lock()
	defer userDBMu.Unlock()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.CombinedOutput()
}

// newSystemUser creates a user for this test only, removed when it ends.
func newSystemUser(t *testing.T, name, password string) {
	t.Helper()
	t.Cleanup(func() { removeSystemUser(t, name) })
	if err := createSystemUser(name, password); err != nil {
		t.Fatal(err)
	}
}

// removeSystemUser deletes the user, its group and its home directory. An
// sshd session of the user may still be ending: userdel refuses while it
// runs, so try for a few seconds, then force.
func removeSystemUser(t testing.TB, name string) {
	if _, err := user.Lookup(name); err != nil {
		return
	}
	var out []byte
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = userDB("", "userdel", "-r", name); err == nil || !strings.Contains(string(out), "currently used by process") {
			break
		}
	}
	if err != nil && strings.Contains(string(out), "currently used by process") {
		out, err = userDB("", "userdel", "-r", "-f", name)
	}
	if _, lookErr := user.Lookup(name); lookErr == nil && t != nil {
		t.Errorf("could not remove user %s: %v %s", name, err, out)
	}
}

// newSudoersFile writes /etc/sudoers.d/NAME with the rule for this test
// only, removed when it ends. visudo checks it first: a broken file in
// sudoers.d would stop sudo for everyone on the machine.
func newSudoersFile(t *testing.T, name, rule string) {
	t.Helper()
	path := filepath.Join(sudoersDir, name)
	tmp := filepath.Join(t.TempDir(), "sudoers")
	if err := os.WriteFile(tmp, []byte("# "+runTag+"\n"+rule+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-c", "-q", "-f", tmp).CombinedOutput(); err != nil {
		t.Fatalf("visudo rejects %q: %v %s", rule, err, out)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing %s: %v", path, err)
		}
	})
	b, _ := os.ReadFile(tmp)
	if err := os.WriteFile(path, b, 0o440); err != nil {
		t.Fatal(err)
	}
}

// procStart is the start time of process pid (clock ticks since boot,
// /proc/PID/stat field 22), or "" if it is not running: with the pid it
// names one process, even after the pid is reused.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// tagAlive says whether the process a runTag names is still running.
func tagAlive(tag string) bool {
	var pid int
	var start string
	if _, err := fmt.Sscanf(tag, "pamd-e2e pid=%d start=%s", &pid, &start); err != nil {
		return false
	}
	return start != "" && procStart(pid) == start
}

// legacyUsers and legacySudoers are what versions of these tests before
// systemPrefix created under fixed names, with passwords anyone can read in
// the repository, and never removed.
var (
	legacyUsers   = []string{"pamdtest", "rotself", "rotsudo", "rotadm", "rotkey", "rotkey2"}
	legacySudoers = map[string]string{"pamd-e2e-rotation": "rotadm ALL=(ALL) NOPASSWD: ALL\n"}
)

// sweepStaleSystemUsers removes, best effort, the users and sudoers files
// of runs that were killed before their clean-up ran: those named with
// systemPrefix whose creating process is gone (a concurrent run's stay),
// and the legacy ones.
func sweepStaleSystemUsers() {
	if os.Geteuid() != 0 {
		return
	}
	if passwd, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(passwd), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 7 {
				continue
			}
			name, gecos, home := f[0], f[4], f[5]
			stale := strings.HasPrefix(name, systemPrefix) && !tagAlive(gecos)
			for _, l := range legacyUsers {
				// useradd -m with no comment, as the old tests did.
				stale = stale || name == l && gecos == "" && home == "/home/"+l
			}
			if stale {
				removeSystemUser(nil, name)
			}
		}
	}
	entries, _ := os.ReadDir(sudoersDir)
	for _, e := range entries {
		path := filepath.Join(sudoersDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if strings.HasPrefix(e.Name(), systemPrefix) && !tagAlive(strings.TrimPrefix(first, "# ")) ||
			legacySudoers[e.Name()] != "" && string(b) == legacySudoers[e.Name()] {
			os.Remove(path)
		}
	}
}

// TestSweepRemovesOnlyStaleLeftovers: what a killed run left (its process
// is gone) is removed; what a running one made stays.
func TestSweepRemovesOnlyStaleLeftovers(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): the sweep reads the user database and sudoers.d while parallel tests write them.
	_, err := exec.LookPath("useradd")
	needPeers(t, "root and useradd", err == nil && os.Geteuid() == 0)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadTag := fmt.Sprintf("pamd-e2e pid=%d start=1", gone.Process.Pid)
	id := randomID(3)
	stale, live := systemName(id, "stale"), systemName(id, "live")
	t.Cleanup(func() { removeSystemUser(t, stale) })
	if err := createTaggedUser(stale, "Stale-Pass-1", deadTag); err != nil {
		t.Fatal(err)
	}
	newSystemUser(t, live, "Live-Pass-1")
	staleFile := filepath.Join(sudoersDir, systemName(id, "stale"))
	t.Cleanup(func() { os.Remove(staleFile) })
	if err := os.WriteFile(staleFile, []byte("# "+deadTag+"\n"+stale+" ALL=(root) NOPASSWD: /bin/true\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	newSudoersFile(t, systemName(id, "live"), live+" ALL=(root) NOPASSWD: /bin/true")

	sweepStaleSystemUsers()
	if _, err := user.Lookup(stale); err == nil {
		t.Error("the stale user is still there")
	}
	if _, err := os.Stat(staleFile); err == nil {
		t.Error("the stale sudoers file is still there")
	}
	if _, err := user.Lookup(live); err != nil {
		t.Error("the sweep removed a running test's user")
	}
	if _, err := os.Stat(filepath.Join(sudoersDir, systemName(id, "live"))); err != nil {
		t.Error("the sweep removed a running test's sudoers file")
	}
}
