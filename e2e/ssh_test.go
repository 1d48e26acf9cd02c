package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
)

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestSSHAuthModesExitStatusAndCertificateSetup(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	show := e.ok("", "resources", "show", "box")
	if !strings.Contains(show, "host key: SHA256:") {
		t.Fatalf("show lacks the pinned fingerprint:\n%s", show)
	}

	// Before the CA is trusted, certificate login is refused, readably.
	_, errOut, err := e.run("", "ssh", "box/cert", "--", "true")
	if err == nil || !strings.Contains(errOut, "refused the stored certificate credential") || !strings.Contains(errOut, "ssh-ca") {
		t.Fatalf("untrusted CA: err %v stderr %q", err, errOut)
	}
	first := e.trustCA(s, "box")
	second := e.trustCA(s, "box") // safe to run twice
	if !strings.Contains(first, "added TrustedUserCAKeys") || !strings.Contains(second, "already trusts") {
		t.Fatalf("setup script runs:\n%s\n---\n%s", first, second)
	}
	cfg, _ := os.ReadFile(s.config)
	if strings.Count(string(cfg), "TrustedUserCAKeys") != 1 {
		t.Fatalf("sshd_config after two runs:\n%s", cfg)
	}
	caLine := e.ok("", "resources", "ssh-ca", "box")
	if !strings.HasPrefix(caLine, "ssh-ed25519 ") {
		t.Fatalf("CA public key: %q", caLine)
	}

	for _, acct := range []string{"pw", "key", "enc", "cert"} {
		t.Run(acct, func(t *testing.T) {
			out, errOut, err := e.run("", "ssh", "box/"+acct, "--", "sh", "-c", "'echo out-$(whoami); echo err-line >&2; exit 3'")
			if exitCode(err) != 3 || out != "out-"+sshUser+"\n" || !strings.Contains(errOut, "err-line") {
				t.Fatalf("exit %d stdout %q stderr %q", exitCode(err), out, errOut)
			}
		})
	}
	// The certificate named the pamd user and session, and only this one principal.
	log, _ := os.ReadFile(s.log)
	if !strings.Contains(string(log), `Accepted certificate ID "pamd user=admin session=`) {
		t.Fatalf("sshd log lacks the certificate login:\n%s", lastLines(string(log), 10))
	}
	// An sshd that lists other principals for the user refuses the certificate.
	principals := fmt.Sprintf("/tmp/pamd-e2e-principals-%d", os.Getpid()) // sshd reads it as the user
	os.WriteFile(principals, []byte("someone-else\n"), 0o644)
	defer os.Remove(principals)
	f, _ := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "AuthorizedPrincipalsFile %s\n", principals)
	f.Close()
	s.restart()
	_, errOut, err = e.run("", "ssh", "box/cert", "--", "true")
	log, _ = os.ReadFile(s.log)
	if err == nil || !strings.Contains(errOut, "refused the stored certificate credential") || !strings.Contains(string(log), "Certificate does not contain an authorized principal") {
		t.Fatalf("wrong principal: %v %q\n%s", err, errOut, lastLines(string(log), 5))
	}
}

func TestSSHWrongCredentialAndHostKeyMismatch(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	// A wrong credential is refused when the account is added (pamd logs
	// in with it through the gateway first), unless it is stored unchecked.
	if errOut := e.fails("wrong-password\n", "accounts", "add", "box/bad", "--username", sshUser, "--password-stdin"); !strings.Contains(errOut, "account bad cannot log in to box") ||
		!strings.Contains(errOut, "refused the stored password credential") || strings.Contains(errOut, "wrong-password") {
		t.Fatalf("adding an account with a wrong password: %q", errOut)
	}
	e.ok("wrong-password\n", "accounts", "add", "box/bad", "--username", sshUser, "--password-stdin", "--no-login-check")
	// pamd resources test logs in with each account and says which fail.
	var checks []struct {
		Check string `json:"check"`
		OK    bool   `json:"ok"`
	}
	if out, _, _ := e.run("", "resources", "test", "box", "-o", "json"); json.Unmarshal([]byte(out), &checks) != nil {
		t.Fatalf("resources test -o json: %s", out)
	}
	results := map[string]bool{}
	for _, c := range checks {
		results[c.Check] = c.OK
	}
	for check, want := range map[string]bool{"reach and match the pinned host key": true, "log in as account pw": true, "log in as account key": true,
		"log in as account enc": true, "log in as account bad": false} {
		if got, ok := results[check]; !ok || got != want {
			t.Errorf("resources test: %q is %v (listed %v), want %v; all: %+v", check, got, ok, want, checks)
		}
	}
	_, errOut, err := e.run("", "ssh", "box/bad", "--", "true")
	if err == nil || !strings.Contains(errOut, "refused the stored password credential of account bad") {
		t.Fatalf("wrong password: %v %q", err, errOut)
	}
	// Through connect, OpenSSH's own client shows the reason (a banner).
	c := e.connect("box/bad")
	kh := knownHosts(t, c)
	out, err := exec.Command("ssh", sshArgs(c, kh, "true")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pamd: the SSH server of resource box refused") {
		t.Fatalf("OpenSSH with a wrong stored password: %v\n%s", err, out)
	}

	before := e.ok("", "resources", "show", "box", "-o", "json")
	s.newHostKey()
	s.restart()
	_, errOut, err = e.run("", "ssh", "box/key", "--", "true")
	var r struct {
		HostKeyFingerprint string `json:"host_key_fingerprint"`
	}
	json.Unmarshal([]byte(before), &r)
	if err == nil || !strings.Contains(errOut, "host key mismatch") || !strings.Contains(errOut, r.HostKeyFingerprint) || !strings.Contains(errOut, "trust-host-key box") {
		t.Fatalf("host key mismatch: %v %q (pinned %s)", err, errOut, r.HostKeyFingerprint)
	}
	if !strings.Contains(errOut, "pamd refused the target's host key") || strings.Contains(errOut, "target refused the login") {
		t.Fatalf("after a host key mismatch pamd ssh says %q, want that the host key was refused", errOut)
	}
	e.waitFor("mismatch audit event", 5*time.Second, func() bool {
		return strings.Contains(e.ok("", "audit", "list", "--action", "ssh.host_key_mismatch", "-o", "json"), r.HostKeyFingerprint)
	})
	e.ok("", "resources", "trust-host-key", "box")
	if out := e.ok("", "ssh", "box/key", "--", "echo", "repinned"); out != "repinned\n" {
		t.Fatalf("after re-pinning: %q", out)
	}
}

func knownHosts(t *testing.T, c *connection) string {
	var j struct {
		KnownHosts string `json:"known_hosts"`
	}
	line, _, _ := strings.Cut(c.proc.stdout.String(), "\n")
	json.Unmarshal([]byte(line), &j)
	if j.KnownHosts == "" {
		t.Fatalf("connect printed no known_hosts file: %s", line)
	}
	return j.KnownHosts
}

// sshArgs are the OpenSSH options for connect's port: pamd's host key
// pinned, no keys or agent of the person's, no prompts.
func sshOpts(kh string) []string {
	return []string{"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null", "-o", "IdentityAgent=none", "-F", "/dev/null"}
}

func sshArgs(c *connection, kh string, command ...string) []string {
	return append(append(sshOpts(kh), "-p", fmt.Sprint(c.Port), sshUser+"@127.0.0.1"), command...)
}

func fileSum(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func TestOpenSSHClientsThroughConnect(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	c := e.connect("box/key")
	kh := knownHosts(t, c)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out, err := exec.Command("ssh", sshArgs(c, kh, "echo via-openssh; exit 7")...).CombinedOutput(); exitCode(err) != 7 || string(out) != "via-openssh\n" {
		t.Fatalf("ssh exec: exit %d %q", exitCode(err), out)
	}
	// 32 MiB: eight times the largest flow-control window on the way (the
	// tunnel's 4 MiB), so each client streams through many window updates
	// on every hop; more only costs CPU that the tests running beside it share.
	const size = 32 << 20
	big := filepath.Join(e.dir, "big.bin")
	f, _ := os.Create(big)
	io.CopyN(f, rand.NewChaCha8([32]byte{3, 4}), size)
	f.Close()
	want := fileSum(t, big)
	remote := func(n string) string { return fmt.Sprintf("/tmp/pamd-e2e-%d-%s", os.Getpid(), n) }
	defer func() {
		for _, n := range []string{"scp", "scp-legacy", "sftp", "rsync"} {
			os.Remove(remote(n))
		}
	}()
	port := fmt.Sprint(c.Port)
	run("scp", append(sshOpts(kh), "-P", port, big, sshUser+"@127.0.0.1:"+remote("scp"))...)
	run("scp", append(sshOpts(kh), "-O", "-P", port, big, sshUser+"@127.0.0.1:"+remote("scp-legacy"))...)
	batch := filepath.Join(e.dir, "batch")
	back := filepath.Join(e.dir, "back.bin")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s\nget %s %s\n", big, remote("sftp"), remote("sftp"), back)), 0o600)
	run("sftp", append(sshOpts(kh), "-P", port, "-b", batch, sshUser+"@127.0.0.1")...)
	run("rsync", "-e", "ssh "+strings.Join(sshOpts(kh), " ")+" -p "+port, big, sshUser+"@127.0.0.1:"+remote("rsync"))
	for _, n := range []string{"scp", "scp-legacy", "sftp", "rsync"} {
		if got := fileSum(t, remote(n)); got != want {
			t.Errorf("%s: the copy's checksum differs", n)
		}
	}
	if fileSum(t, back) != want {
		t.Error("sftp get: checksum differs")
	}

	// ssh -L: a port forward through pamd reaches the sshd itself.
	lport := freePort(t)
	fwd := exec.Command("ssh", append(sshOpts(kh), "-N", "-L", lport+":"+s.addr, "-p", port, sshUser+"@127.0.0.1")...)
	fwd.Start()
	defer fwd.Process.Kill()
	e.waitFor("the forwarded port to answer with an SSH banner", 10*time.Second, func() bool {
		conn, err := netDial(lport)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 8)
		n, _ := io.ReadFull(conn, b)
		return string(b[:n]) == "SSH-2.0-"
	})

	var logs string
	e.waitFor("the file operations in the session log", 10*time.Second, func() bool {
		logs = e.ok("", "sessions", "logs", c.SessionID)
		return strings.Count(logs, fmt.Sprintf("(%d bytes)", size)) >= 4 && strings.Contains(logs, "port forward to "+s.addr)
	})
	for _, want := range []string{"exec echo via-openssh; exit 7", "exit status 7", "subsystem sftp", "file upload " + remote("scp"), "file download " + remote("sftp"), "exec scp -t " + remote("scp-legacy"), "exec rsync --server"} {
		if !strings.Contains(logs, want) {
			t.Errorf("session log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(logs)
	}
}

func tmuxAvailable() bool { _, err := exec.LookPath("tmux"); return err == nil }

// tmuxSession runs a command in a detached tmux window of the given size.
func tmuxSession(t *testing.T, e *env, cols, rows int, command string) (send func(string), screen func() string) {
	needPeers(t, "tmux", tmuxAvailable())
	sock := filepath.Join(e.dir, "tmux.sock")
	tm := func(args ...string) string {
		out, _ := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out)
	}
	env := "PAMD_CONFIG_DIR=" + e.configDir + " TERM=xterm-256color "
	if out, err := exec.Command("tmux", "-S", sock, "new-session", "-d", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), env+command+"; sleep 30").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { tm("kill-server") })
	send = func(keys string) { tm("send-keys", "-l", keys); tm("send-keys", "Enter") }
	screen = func() string { return tm("capture-pane", "-p", "-J", "-S", "-100") }
	resize := func(c, r int) { tm("resize-window", "-x", fmt.Sprint(c), "-y", fmt.Sprint(r)) }
	_ = resize
	return send, screen
}

func TestSSHTerminalResizeRecordingAndReplay(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	send, screen := tmuxSession(t, e, 100, 30, pamdBin+" ssh box/pw --reason terminal-test")
	e.waitFor("the remote prompt", 10*time.Second, func() bool { return strings.Contains(screen(), sshUser+"@") })
	send("stty size")
	e.waitFor("stty size 30 100", 5*time.Second, func() bool { return strings.Contains(screen(), "30 100") })
	var live []sessionDetail
	e.json(&live, "sessions", "list", "-o", "json")
	if len(live) != 1 {
		t.Fatalf("%d sessions, want the one of pamd ssh", len(live))
	}
	sock := filepath.Join(e.dir, "tmux.sock")
	exec.Command("tmux", "-S", sock, "resize-window", "-x", "120", "-y", "40").Run()
	// The gateway records the window change as it passes it on to sshd, so
	// what is typed after it runs in the resized terminal.
	e.waitFor("the resize in the session log", 10*time.Second, func() bool {
		return strings.Contains(e.ok("", "sessions", "logs", live[0].ID), "resize 120x40")
	})
	send("stty size; echo marker-$((6*7))")
	e.waitFor("the resized terminal", 5*time.Second, func() bool { return strings.Contains(screen(), "40 120") && strings.Contains(screen(), "marker-42") })
	send("exit 4")
	var sessions []sessionDetail
	e.waitFor("the session to end", 10*time.Second, func() bool {
		e.json(&sessions, "sessions", "list", "-o", "json")
		return len(sessions) == 1 && !sessions[0].Active
	})
	id := sessions[0].ID
	var logs string
	e.waitFor("the exit in the log", 5*time.Second, func() bool {
		logs = e.ok("", "sessions", "logs", id)
		return strings.Contains(logs, "exit status 4")
	})
	for _, want := range []string{"terminal xterm-256color 100x30", "shell", "resize 120x40"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	cast := e.ok("", "sessions", "export", id, "--format", "asciicast")
	h, events, err := asciicast.Read(strings.NewReader(cast))
	if err != nil {
		t.Fatalf("exported recording does not read as asciicast v2: %v", err)
	}
	if h.Width != 100 || h.Height != 30 {
		t.Fatalf("header %+v", h)
	}
	var out, in strings.Builder
	last, resized := -1.0, false
	for _, ev := range events {
		if ev.Time < last {
			t.Fatal("event times decrease")
		}
		last = ev.Time
		switch ev.Code {
		case "o":
			out.WriteString(ev.Data)
		case "i":
			in.WriteString(ev.Data)
		case "r":
			resized = resized || ev.Data == "120x40"
		}
	}
	if !strings.Contains(in.String(), "echo marker-$((6*7))") || !strings.Contains(out.String(), "marker-42") || !resized {
		t.Fatalf("recording lacks what was typed, printed or resized:\ninput %q", in.String())
	}
	if last <= 0.2 {
		t.Fatalf("recording spans %.2fs; timing was not kept", last)
	}
	// Replay prints the output again.
	if played := e.ok("", "sessions", "play", id, "--speed", "50"); !strings.Contains(played, "marker-42") {
		t.Fatal("play did not print the recorded output")
	}
}

func TestSSHExpiryCutsLiveShellWithMessage(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts 1 s windows.
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSHResource(s, "box")
	e.ok("", "accounts", "add", "box/key", "--username", sshUser, "--auth", "key", "--private-key-file", s.key)
	_, screen := tmuxSession(t, e, 80, 24, pamdBin+" ssh box/key --duration 4s; echo pamd-exit=$?")
	e.waitFor("the remote prompt", 10*time.Second, func() bool { return strings.Contains(screen(), sshUser+"@") })
	var sessions []sessionDetail
	e.json(&sessions, "sessions", "list", "-o", "json")
	time.Sleep(time.Until(sessions[0].ExpiresAt)) // the expiry is what is tested
	start := time.Now()
	e.waitFor("the expiry message", 3*time.Second, func() bool {
		return strings.Contains(screen(), "pamd: session expired") && strings.Contains(screen(), "pamd-exit=")
	})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shell cut %s after expiry", d)
	}
	if strings.Contains(screen(), "pamd-exit=0") {
		t.Fatal("pamd ssh exited 0 after its session was cut")
	}
	// Terminate does the same for an OpenSSH client through connect.
	c := e.connect("box/key")
	kh := knownHosts(t, c)
	cmd := exec.Command("ssh", append([]string{"-tt"}, sshArgs(c, kh, "sleep 60")...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Start()
	e.waitFor("the remote command to run", 10*time.Second, func() bool {
		return strings.Contains(e.ok("", "sessions", "logs", c.SessionID), "exec sleep 60")
	})
	start = time.Now()
	e.ok("", "sessions", "terminate", c.SessionID)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		t.Fatal("OpenSSH session still open 3 s after terminate")
	}
	if d := time.Since(start); d > time.Second+200*time.Millisecond || !strings.Contains(out.String(), "terminated by admin") {
		t.Fatalf("terminate took %s; client saw %q", d, out.String())
	}
}

func TestSSHSecretsNeverReachClientOrRecording(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	e.trustCA(s, "box")
	for _, a := range []string{"pw", "key", "enc", "cert"} {
		e.ok("", "ssh", "box/"+a, "--", "env")
	}
	c := e.connect("box/pw")
	kh := knownHosts(t, c)
	exec.Command("ssh", sshArgs(c, kh, "env; cat ~/"+s.keysFile)...).CombinedOutput()
	var records string
	e.waitFor("records", 5*time.Second, func() bool {
		records = e.ok("", "sessions", "logs", c.SessionID, "-o", "json")
		return strings.Contains(records, "exit")
	})
	var everything strings.Builder
	everything.WriteString(e.allOutput())
	var sessions []sessionDetail
	e.json(&sessions, "sessions", "list", "-o", "json")
	for _, ss := range sessions {
		everything.WriteString(e.ok("", "sessions", "logs", ss.ID, "-o", "json"))
		everything.WriteString(e.ok("", "sessions", "show", ss.ID, "-o", "json"))
	}
	everything.WriteString(e.ok("", "resources", "show", "box", "-o", "json"))
	everything.WriteString(e.ok("", "audit", "list", "-o", "json"))
	keyBody := func(p []byte) string { // the base64 body of the private key, not its armour
		lines := strings.Split(strings.TrimSpace(string(p)), "\n")
		return strings.Join(lines[1:len(lines)-1], "")
	}
	all := strings.ReplaceAll(everything.String(), "\n", "")
	for name, secret := range map[string]string{"password": sshPassword, "passphrase": keyPassphrase, "private key": keyBody(s.keyPEM)[:40], "encrypted key": keyBody(s.encPEM)[:40]} {
		if strings.Contains(all, secret) {
			t.Errorf("the %s appeared in something pamd showed", name)
		}
	}
	e.stopServer()
	raw, _ := os.ReadFile(filepath.Join(e.dir, "server", "pamd.db"))
	for _, secret := range []string{sshPassword, keyPassphrase, sshUser} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q is in the data file in the clear", secret)
		}
	}
}

func TestSSHUnreachableTargetIsReadable(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	s.stop()
	_, errOut, err := e.run("", "ssh", "box/key", "--", "true")
	if err == nil || !strings.Contains(errOut, "cannot reach "+s.addr+" for resource box") {
		t.Fatalf("unreachable target: %v %q", err, errOut)
	}
}

// TestRecordsSurviveGatewayKill: records are on the gateway's disk before
// they are uploaded, so a gateway killed before it sent them loses nothing:
// its next start uploads them. The gateway here waits 5 s before uploading,
// so the records are certainly only on its disk when it is killed.
func TestRecordsSurviveGatewayKill(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.gateway.cmd.Process.Signal(os.Interrupt)
	<-e.gateway.done
	gwDir := filepath.Join(e.dir, "gw-gw1")
	e.gateway = e.start([]string{"PAMD_RECORD_BATCH_DELAY=5s"}, "gateway", "--data-dir", gwDir)
	e.waitGatewayOnline("gw1", 10*time.Second)
	e.addSSH(s, "box")
	if out, _, err := e.run("", "ssh", "box/key", "--", "sh", "-c", "'echo spooled-marker; exit 7'"); out != "spooled-marker\n" || exitCode(err) != 7 {
		t.Fatalf("ssh: %q %v", out, err)
	}
	var sessions []sessionDetail
	e.json(&sessions, "sessions", "list", "-o", "json")
	// The gateway writes records to its spool at once (and uploads them
	// only after 5 s): kill it once the session's last one is on its disk.
	e.waitFor("the session's exit in the gateway's spool", 5*time.Second, func() bool {
		return slices.ContainsFunc(spooledRecords(t, gwDir), func(r tunnel.Record) bool {
			return r.SessionID == sessions[0].ID && r.Type == "exit" && r.Status != nil && *r.Status == 7
		})
	})
	e.gateway.cmd.Process.Kill()
	<-e.gateway.done
	if logs := e.ok("", "sessions", "logs", sessions[0].ID); strings.Contains(logs, "exit status 7") {
		t.Fatal("the records were uploaded before the kill; the test proves nothing")
	}
	e.start(nil, "gateway", "--data-dir", gwDir)
	e.waitGatewayOnline("gw1", 10*time.Second)
	e.waitFor("the spooled records on the server", 10*time.Second, func() bool {
		logs := e.ok("", "sessions", "logs", sessions[0].ID)
		return strings.Contains(logs, "exec sh -c") && strings.Contains(logs, "exit status 7")
	})
}

// spooledRecords reads the records in the spool of the gateway with data
// dir gwDir, as gateway/spool.go writes them: one line per record, the
// base64 of a nonce and the record's JSON sealed with AES-256-GCM under the
// key in records.key. A line still being written is skipped.
func spooledRecords(t *testing.T, gwDir string) []tunnel.Record {
	key, err := os.ReadFile(filepath.Join(gwDir, "records.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	lines, _ := os.ReadFile(filepath.Join(gwDir, "records.spool"))
	var recs []tunnel.Record
	for _, line := range strings.Split(string(lines), "\n") {
		sealed, err := base64.RawStdEncoding.DecodeString(line)
		if err != nil || len(sealed) < aead.NonceSize() {
			continue
		}
		plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
		var r tunnel.Record
		if err == nil && json.Unmarshal(plain, &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

func TestResourceAndAccountUpdates(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	// A wrong new password is refused when it is set (pamd logs in with it
	// first); stored unchecked, it is refused at login, with the reason;
	// the right one works.
	if errOut := e.fails("wrong-new-password\n", "accounts", "set", "box/pw", "--password-stdin"); !strings.Contains(errOut, "account pw cannot log in to box") {
		t.Fatalf("setting a wrong password: %q", errOut)
	}
	if out := e.ok("", "ssh", "box/pw", "--", "echo", "kept"); out != "kept\n" {
		t.Fatalf("the refused change replaced the password: %q", out)
	}
	e.ok("wrong-new-password\n", "accounts", "set", "box/pw", "--password-stdin", "--no-login-check")
	if _, errOut, err := e.run("", "ssh", "box/pw", "--", "true"); err == nil || !strings.Contains(errOut, "refused the stored password credential") {
		t.Fatalf("after a wrong password: %v %q", err, errOut)
	}
	e.ok(sshPassword+"\n", "accounts", "set", "box/pw", "--password-stdin", "--description", "rotated by hand", "--require-mfa=false")
	if out := e.ok("", "ssh", "box/pw", "--", "echo", "updated"); out != "updated\n" {
		t.Fatalf("after the update: %q", out)
	}
	// Switching auth to a key drops the password.
	e.ok("", "accounts", "set", "box/pw", "--auth", "key", "--private-key-file", s.key)
	var accts []struct {
		Name        string
		Auth        string
		HasPassword bool `json:"has_password"`
		HasKey      bool `json:"has_key"`
		Description string
	}
	e.json(&accts, "accounts", "list", "box", "-o", "json")
	for _, a := range accts {
		if a.Name == "pw" && (a.Auth != "key" || a.HasPassword || !a.HasKey || a.Description != "rotated by hand") {
			t.Fatalf("account after the switch: %+v", a)
		}
	}
	// A new address re-pins the host key; the audit event says so.
	s2 := startSSHD(t)
	_, port, _ := strings.Cut(s2.addr, ":")
	e.ok("", "resources", "set", "box", "--port", port)
	if out := e.ok("", "ssh", "box/key", "--", "echo", "moved"); out != "moved\n" {
		t.Fatalf("after moving: %q", out)
	}
	audit := e.ok("", "audit", "list", "--action", "resource.update", "-o", "json")
	if !strings.Contains(audit, "host key re-pinned") {
		t.Fatalf("resource.update audit: %s", audit)
	}
	if a := e.ok("", "audit", "list", "--action", "account.update", "-o", "json"); !strings.Contains(a, "password replaced") || strings.Contains(a, sshPassword) {
		t.Fatalf("account.update audit: %s", a)
	}
	if errOut := e.fails("", "accounts", "set", "box/pw"); !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("empty update: %q", errOut)
	}
}

// TestSSHWithoutTerminalIsRecorded: shells and commands without a pty
// (pamd ssh with a pipe, ssh -T with a script, ssh host 'cmd') have their
// input, output and stderr recorded, and the log and replay show them;
// an exec'd sftp-server has its file operations recorded.
func TestSSHWithoutTerminalIsRecorded(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	sessionByReason := func(reason string) string {
		var sessions []sessionDetail
		e.json(&sessions, "sessions", "list", "-o", "json")
		for _, ss := range sessions {
			if ss.Reason == reason {
				return ss.ID
			}
		}
		t.Fatalf("no session with reason %q", reason)
		return ""
	}
	logsWith := func(id string, want ...string) string {
		t.Helper()
		var logs string
		e.waitFor("the records of session "+id, 10*time.Second, func() bool {
			logs = e.ok("", "sessions", "logs", id)
			return strings.Contains(logs, "exit status")
		})
		for _, w := range want {
			if !strings.Contains(logs, w) {
				t.Errorf("session log lacks %q:\n%s", w, logs)
			}
		}
		return logs
	}

	// printf 'echo hi\n' | pamd ssh R/A: a shell reading a pipe.
	if out, errOut, err := e.run("echo hi-$((6*7))\necho oops-on-stderr >&2\n", "ssh", "box/key", "--reason", "piped-shell"); err != nil || !strings.HasSuffix(out, "\nhi-42\n") || !strings.Contains(errOut, "oops-on-stderr") {
		t.Fatalf("piped shell: %v %q %q", err, out, errOut)
	}
	piped := sessionByReason("piped-shell")
	logsWith(piped, "shell", `stdin  "echo hi-$((6*7))"`, `stdout "hi-42"`, `stderr "oops-on-stderr"`)

	// ssh host 'echo out; echo err >&2'
	if out, _, err := e.run("", "ssh", "box/key", "--reason", "exec-streams", "--", "echo out-line; echo err-line >&2"); err != nil || out != "out-line\n" {
		t.Fatalf("exec: %v %q", err, out)
	}
	logsWith(sessionByReason("exec-streams"), "exec echo out-line; echo err-line >&2", `stdout "out-line"`, `stderr "err-line"`)

	// OpenSSH's ssh -T with a script on stdin, and an exec'd sftp-server,
	// through pamd connect.
	c := e.connect("box/key")
	kh := knownHosts(t, c)
	cmd := exec.Command("ssh", append([]string{"-T"}, sshArgs(c, kh)...)...)
	cmd.Stdin = strings.NewReader("echo script-out\necho script-err >&2\nexit 5\n")
	if out, err := cmd.CombinedOutput(); exitCode(err) != 5 || !strings.Contains(string(out), "script-out") {
		t.Fatalf("ssh -T: exit %d %q", exitCode(err), out)
	}
	local := filepath.Join(e.dir, "exec-sftp.txt")
	os.WriteFile(local, []byte("uploaded through an exec'd sftp-server\n"), 0o600)
	remote := fmt.Sprintf("/tmp/pamd-e2e-exec-sftp-%d", os.Getpid())
	defer os.Remove(remote)
	batch := filepath.Join(e.dir, "exec-sftp.batch")
	os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s\n", local, remote)), 0o600)
	if out, err := exec.Command("sftp", append(sshOpts(kh), "-s", "/usr/lib/openssh/sftp-server", "-P", fmt.Sprint(c.Port), "-b", batch, sshUser+"@127.0.0.1")...).CombinedOutput(); err != nil {
		t.Fatalf("sftp -s sftp-server: %v\n%s", err, out)
	}
	var logs string
	e.waitFor("the exec'd sftp-server's file operation", 10*time.Second, func() bool {
		logs = e.ok("", "sessions", "logs", c.SessionID)
		return strings.Contains(logs, "file upload "+remote)
	})
	for _, w := range []string{`stdin  "echo script-out"`, `stdout "script-out"`, `stderr "script-err"`, "exit status 5",
		"exec /usr/lib/openssh/sftp-server", "file upload " + remote + " (39 bytes)"} {
		if !strings.Contains(logs, w) {
			t.Errorf("connect session log lacks %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, "uploaded through") {
		t.Errorf("the trusted sftp-server's file contents were recorded as bytes:\n%s", logs)
	}

	// The replay of a channel without a terminal shows its lines readably:
	// LF as CRLF, input echoed, stderr in red; it is valid asciicast v2.
	cast := e.ok("", "sessions", "export", piped, "--format", "asciicast")
	if _, events, err := asciicast.Read(strings.NewReader(cast)); err != nil || len(events) == 0 {
		t.Fatalf("export of a shell without a terminal: %v, %d events\n%s", err, len(events), cast)
	}
	played := e.ok("", "sessions", "play", piped, "--speed", "50")
	for _, w := range []string{"echo hi-$((6*7))\r\n", "hi-42\r\n", "\x1b[31moops-on-stderr\r\n"} {
		if !strings.Contains(played, w) {
			t.Errorf("play lacks %q: %q", w, played)
		}
	}
}
