package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tds"
)

// accountStatus is what accounts show -o json says of a rotation.
type accountStatus struct {
	Name     string
	Rotation *struct {
		Interval    string
		RotateWith  string `json:"rotate_with"`
		Result      string
		Error       string
		Warning     string
		Pending     bool
		LastAttempt time.Time `json:"last_attempt"`
		LastSuccess time.Time `json:"last_success"`
		NextRun     time.Time `json:"next_run"`
	}
}

func (e *env) rotationOf(target string) accountStatus {
	e.t.Helper()
	var a accountStatus
	e.json(&a, "accounts", "show", target, "-o", "json")
	if a.Rotation == nil {
		e.t.Fatalf("%s has no rotation status", target)
	}
	return a
}

// waitRotated waits until the account's last rotation succeeded after since
// and nothing is pending.
func (e *env) waitRotated(target string, since time.Time, within time.Duration) accountStatus {
	e.t.Helper()
	var a accountStatus
	e.waitFor(target+" rotated", within, func() bool {
		a = accountStatus{}
		e.json(&a, "accounts", "show", target, "-o", "json")
		return a.Rotation != nil && !a.Rotation.Pending && a.Rotation.Result == "success" && a.Rotation.LastSuccess.After(since)
	})
	return a
}

// killServer and killGateway stop a process at once (SIGKILL: no clean-up
// runs).
func (e *env) killServer() {
	e.server.cmd.Process.Kill()
	<-e.server.done
}

func (e *env) killGateway() {
	e.gateway.cmd.Process.Kill()
	<-e.gateway.done
}

func (e *env) restartGateway(extraEnv ...string) {
	e.t.Helper()
	e.gateway = e.start(extraEnv, "gateway", "--data-dir", filepath.Join(e.dir, "gw-gw1"))
	e.waitGatewayOnline("gw1", 15*time.Second)
}

// killAt runs one rotation of target with the named process stopped at
// step, kills that process there, starts it again without the stop and
// waits for the rotation to be resumed and finished.
func (e *env) killAt(target, step string) {
	e.t.Helper()
	before := time.Now()
	var paused *proc
	if step == "sealed" || step == "answered" {
		e.killServer()
		e.startServer("PAMD_TEST_PAUSE_ROTATION=" + step)
		e.waitGatewayOnline("gw1", 15*time.Second)
		paused = e.server
	} else {
		e.killGateway()
		e.restartGateway("PAMD_TEST_PAUSE_ROTATION=" + step)
		paused = e.gateway
	}
	go e.run("", "accounts", "rotate", target)
	e.waitFor("rotation paused at "+step, 30*time.Second, func() bool {
		return strings.Contains(paused.stderr.String(), "rotation paused for a test") && strings.Contains(paused.stderr.String(), "step="+step)
	})
	// Meanwhile the account cannot be changed under the rotation.
	if errOut := e.fails("", "accounts", "set", target, "--description", "set during a rotation"); !strings.Contains(errOut, "is running") {
		e.t.Fatalf("changing %s during a rotation: %s", target, errOut)
	}
	if paused == e.server {
		e.killServer()
		e.startServer()
		e.waitGatewayOnline("gw1", 15*time.Second)
	} else {
		e.killGateway()
		if a := e.rotationOf(target); !a.Rotation.Pending {
			e.t.Fatalf("killed at %s: the rotation is not pending: %+v", step, a.Rotation)
		}
		e.restartGateway()
	}
	e.waitRotated(target, before, 30*time.Second)
}

func TestRotationMSSQL(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	s.AddLogin("rotator", "Rotator-Pass-7q", true)
	s.AddLogin("app2", "App2-Pass-4x", false)
	s.CheckPolicy = true
	e := newEnv(t)
	e.addMSSQL("sql", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql/app", "--username", "app", "--password-stdin")
	e.ok("Rotator-Pass-7q\n", "accounts", "add", "sql/rotator", "--username", "rotator", "--password-stdin")
	e.ok("App2-Pass-4x\n", "accounts", "add", "sql/app2", "--username", "app2", "--password-stdin")
	e.ok("Nt-Pass-1\n", "accounts", "add", "sql/win", "--auth", "ntlm", "--domain", "CORP", "--username", "bob", "--password-stdin", "--no-login-check")
	ctx := context.Background()

	// A session is open, with a connection in use, across the rotation.
	c := e.connectMSSQL("sql/app")
	db := sqlDB(t, c.addr(), url.Values{})
	held, err := db.Conn(ctx)
	if err != nil || held.PingContext(ctx) != nil {
		t.Fatalf("connection before the rotation: %v", err)
	}
	out := e.ok("", "accounts", "rotate", "sql/app")
	if !strings.Contains(out, "rotated sql/app") || !strings.Contains(out, "1 live session(s)") {
		t.Fatalf("rotate said: %s", out)
	}
	first := s.Password("app")
	if first == sqlPassword || len(first) != 32 {
		t.Fatalf("the stand-in's password for app was not replaced by a 32-character one")
	}
	var one int
	if err := held.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the open connection after the rotation: %v", err)
	}
	fresh := sqlDB(t, c.addr(), url.Values{})
	if err := fresh.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("a new connection of the live session after the rotation: %v", err)
	}
	held.Close()

	// Through a rotation account (ALTER ANY LOGIN, no old password).
	e.ok("", "accounts", "set", "sql/app2", "--rotate-with", "sql/rotator")
	e.ok("", "accounts", "rotate", "sql/app2")
	if s.Password("app2") == "App2-Pass-4x" {
		t.Fatal("app2's password did not change")
	}
	if e.rotationOf("sql/app2").Rotation.RotateWith != "rotator" {
		t.Fatal("status does not name the rotation account")
	}

	// Failures keep the working credential and say why.
	before := s.Password("app")
	e.ok("", "resources", "set", "sql", "--password-classes", "lower", "--password-length", "16")
	errOut := e.fails("", "accounts", "rotate", "sql/app")
	if !strings.Contains(errOut, "error 15118") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("policy refusal: %s", errOut)
	}
	if s.Password("app") != before {
		t.Fatal("a refused rotation changed the password")
	}
	e.ok("", "resources", "set", "sql", "--password-classes", "lower,upper,digit,symbol", "--password-length", "24")
	s.AddLogin("rotator", "Rotator-Pass-7q", false) // loses ALTER ANY LOGIN
	before = s.Password("app2")
	errOut = e.fails("", "accounts", "rotate", "sql/app2")
	if !strings.Contains(errOut, "error 15151") || !strings.Contains(errOut, "keeps its old credential") || s.Password("app2") != before {
		t.Fatalf("rotation account without permission: %s", errOut)
	}
	e.ok("Wrong-Pass-0\n", "accounts", "set", "sql/rotator", "--password-stdin", "--no-login-check")
	errOut = e.fails("", "accounts", "rotate", "sql/app2")
	if !strings.Contains(errOut, "refused the stored credentials of account rotator") || s.Password("app2") != before {
		t.Fatalf("wrong rotation account: %s", errOut)
	}
	if errOut := e.fails("", "accounts", "rotate", "sql/win"); !strings.Contains(errOut, "Windows domain account") {
		t.Fatalf("NTLM account: %s", errOut)
	}
	if a := e.rotationOf("sql/app2"); a.Rotation.Result != "failure" || !strings.Contains(a.Rotation.Error, "refused the stored credentials") {
		t.Fatalf("status after the failure: %+v", a.Rotation)
	}
	if err := fresh.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("access after the failures: %v", err)
	}

	// On a schedule.
	since := time.Now()
	e.ok("", "accounts", "set", "sql/app", "--rotation-interval", "2s")
	a := e.waitRotated("sql/app", since, 20*time.Second)
	if a.Rotation.Interval != "2s" || a.Rotation.NextRun.IsZero() {
		t.Fatalf("scheduled status: %+v", a.Rotation)
	}
	scheduled := s.Password("app")
	e.ok("", "accounts", "set", "sql/app", "--rotation-interval", "0")
	if len(scheduled) != 24 || scheduled == before {
		t.Fatalf("the scheduled rotation did not use the resource's policy (length %d)", len(scheduled))
	}

	// Killed at each step, then resumed at the next start.
	for _, step := range []string{"sealed", "changed", "verified", "answered"} {
		prev := s.Password("app")
		e.killAt("sql/app", step)
		if s.Password("app") == prev {
			t.Fatalf("killed at %s: the resumed rotation did not change the password", step)
		}
		c := e.connectMSSQL("sql/app")
		if err := sqlDB(t, c.addr(), url.Values{}).QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("access after a kill at %s: %v", step, err)
		}
	}

	// With checks an hour apart, the gateway coming back is what resumes.
	e.killServer()
	e.startServer("PAMD_ROTATION_CHECK=1h")
	e.waitGatewayOnline("gw1", 15*time.Second)
	e.killAt("sql/app", "changed")

	// No password, old or new, anywhere a person or a log can see it.
	var audit []struct{ Action, Outcome, Detail string }
	e.json(&audit, "audit", "list", "-o", "json")
	rotations := 0
	for _, ev := range audit {
		if ev.Action == "account.rotate" {
			rotations++
		}
	}
	if rotations < 10 {
		t.Fatalf("%d account.rotate audit events", rotations)
	}
	auditJSON, _ := json.Marshal(audit)
	status := e.ok("", "accounts", "list", "sql", "-o", "json") + e.ok("", "accounts", "show", "sql/app")
	for _, pw := range []string{sqlPassword, first, scheduled, s.Password("app"), s.Password("app2")} {
		for where, text := range map[string]string{"process output": e.allOutput(), "audit": string(auditJSON), "status": status} {
			if strings.Contains(text, pw) {
				t.Fatalf("a password is in the %s", where)
			}
		}
	}
}

// pingThrough opens a new session's client through pamd connect, pings
// and closes it.
func pingThrough(t *testing.T, e *env, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(mongoURI(t, e.connect(target))).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return err
	}
	defer c.Disconnect(ctx)
	return c.Ping(ctx, nil)
}

// directMongo logs in to FerretDB itself (not through pamd) and says
// whether the credential works.
func directMongo(f *ferret, user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(f.uri).SetServerSelectionTimeout(5 * time.Second).
		SetAuth(options.Credential{Username: user, Password: password, AuthSource: "admin"}))
	if err != nil {
		return err
	}
	defer c.Disconnect(ctx)
	return c.Ping(ctx, nil)
}

func TestRotationMongoDB(t *testing.T) {
	t.Parallel()
	f := startFerret(t, false)
	e := newEnv(t)
	e.addMongo(f, "mdb") // mdb/app is FerretDB's admin user
	admin, err := mongo.Connect(options.Client().ApplyURI(f.uri).SetAuth(options.Credential{Username: "admin", Password: mongoAdminPassword, AuthSource: "admin"}))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Disconnect(context.Background())
	ctx := context.Background()
	for _, u := range []string{"svc", "batch"} {
		if err := admin.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: u}, {Key: "pwd", Value: "Start-" + u + "-1"}, {Key: "roles", Value: bson.A{}}}).Err(); err != nil {
			t.Fatalf("createUser %s: %v", u, err)
		}
		e.ok("Start-"+u+"-1\n", "accounts", "add", "mdb/"+u, "--username", u, "--password-stdin")
	}

	// A live session on svc, with a pooled client, across the rotation.
	c := e.connect("mdb/svc")
	client := mongoClient(t, mongoURI(t, c))
	coll := client.Database("e2e").Collection("rot")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatalf("insert before the rotation: %v", err)
	}
	out := e.ok("", "accounts", "rotate", "mdb/svc")
	if !strings.Contains(out, "rotated mdb/svc") || !strings.Contains(out, "1 live session(s)") {
		t.Fatalf("rotate said: %s", out)
	}
	if directMongo(f, "svc", "Start-svc-1") == nil {
		t.Fatal("the old password still logs in to FerretDB")
	}
	if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 1 {
		t.Fatalf("the live session's client after the rotation: %d %v", n, err)
	}
	if err := mongoClient(t, mongoURI(t, c)).Ping(ctx, nil); err != nil {
		t.Fatalf("a new client in the live session after the rotation: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	client.Disconnect(dctx)
	cancel()

	// Through the admin account, on a schedule.
	e.ok("", "accounts", "set", "mdb/batch", "--rotate-with", "mdb/app", "--rotation-interval", "2s")
	e.waitRotated("mdb/batch", time.Now(), 20*time.Second)
	e.ok("", "accounts", "set", "mdb/batch", "--rotation-interval", "off")
	if directMongo(f, "batch", "Start-batch-1") == nil {
		t.Fatal("batch's old password still logs in")
	}

	// A rotation account that cannot log in (its user was dropped): a
	// readable failure, access kept.
	if err := admin.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: "gone"}, {Key: "pwd", Value: "Gone-Pass-1"}, {Key: "roles", Value: bson.A{}}}).Err(); err != nil {
		t.Fatal(err)
	}
	e.ok("Gone-Pass-1\n", "accounts", "add", "mdb/gone", "--username", "gone", "--password-stdin")
	if err := admin.Database("admin").RunCommand(ctx, bson.D{{Key: "dropUser", Value: "gone"}}).Err(); err != nil {
		t.Fatal(err)
	}
	e.ok("", "accounts", "set", "mdb/batch", "--rotate-with", "mdb/gone")
	errOut := e.fails("", "accounts", "rotate", "mdb/batch")
	if !strings.Contains(errOut, "refused the stored credential of account gone") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("wrong rotation account: %s", errOut)
	}
	if err := pingThrough(t, e, "mdb/batch"); err != nil {
		t.Fatalf("batch after the failed rotation: %v", err)
	}

	// Killed at each step, then resumed.
	for _, step := range []string{"sealed", "changed", "verified", "answered"} {
		e.killAt("mdb/svc", step)
		if err := pingThrough(t, e, "mdb/svc"); err != nil {
			t.Fatalf("access after a kill at %s: %v", step, err)
		}
	}
	if strings.Contains(e.allOutput(), mongoAdminPassword) {
		t.Fatal("the admin password is in a process's output")
	}
}

// rotationUsers makes the target's users for an SSH rotation test, named
// for this test only and removed when it ends (sysusers_test.go): one per
// role, each with the password Start-ROLE-1, the key users (rotkey...) with
// keyLine authorized, and rotadm allowed everything through sudo without a
// password. It returns each role's user name. The users are the test's own
// because rotation rewrites what it rotates: a key rotation, the user's
// ~/.ssh/authorized_keys.
func rotationUsers(t *testing.T, keyLine string, roles ...string) map[string]string {
	_, err := exec.LookPath("sudo")
	needPeers(t, "sudo", err == nil)
	id := randomID(3)
	names := map[string]string{}
	for _, role := range roles {
		u := systemName(id, role)
		names[role] = u
		newSystemUser(t, u, "Start-"+role+"-1")
		if strings.HasPrefix(role, "rotkey") {
			home, err := user.Lookup(u)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(home.HomeDir, ".ssh")
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte("# kept by the test\n"+keyLine), 0o600)
			exec.Command("chown", "-R", u+":", dir).Run()
		}
	}
	if names["rotadm"] != "" {
		newSudoersFile(t, systemName(id, "rotation"), names["rotadm"]+" ALL=(ALL) NOPASSWD: ALL")
	}
	return names
}

// addRotationAccounts adds box/ROLE for each password role's user, with
// its start password.
func (e *env) addRotationAccounts(names map[string]string, roles ...string) {
	e.t.Helper()
	for _, r := range roles {
		e.ok("Start-"+r+"-1\n", "accounts", "add", "box/"+r, "--username", names[r], "--password-stdin")
	}
}

// sshWhoami runs whoami as box/ROLE through pamd ssh: it must be that
// role's user.
func sshWhoami(t *testing.T, e *env, names map[string]string, role string) {
	t.Helper()
	if out, errOut, err := e.run("", "ssh", "box/"+role, "--", "whoami"); err != nil || strings.TrimSpace(out) != names[role] {
		t.Fatalf("ssh box/%s: %q %q %v", role, out, errOut, err)
	}
}

// passwordsHidden fails the test if a role's start password is in any
// pamd process's output.
func passwordsHidden(t *testing.T, e *env, roles ...string) {
	t.Helper()
	for _, r := range roles {
		if strings.Contains(e.allOutput(), "Start-"+r+"-1") {
			t.Fatalf("%s's password is in a process's output", r)
		}
	}
}

// directSSH logs in to the sshd itself with a password.
func directSSH(s *sshd, user, password string) error {
	c, err := ssh.Dial("tcp", s.addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	return c.Close()
}

func authorizedKeys(t *testing.T, u string) string {
	home, _ := user.Lookup(u)
	b, err := os.ReadFile(filepath.Join(home.HomeDir, ".ssh", "authorized_keys"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// passwordRotationBox starts an sshd and a pamd with it as resource box:
// addSSH's accounts, and box/rotself, box/rotsudo (rotated with box/rotadm)
// and box/rotadm for users of this test's own (rotationUsers). The accounts
// are named for their role; names gives each role's user on the target.
func passwordRotationBox(t *testing.T) (s *sshd, e *env, names map[string]string) {
	s = startSSHD(t)
	names = rotationUsers(t, "", "rotself", "rotsudo", "rotadm")
	e = newEnv(t)
	e.addSSH(s, "box")
	e.addRotationAccounts(names, "rotself", "rotsudo", "rotadm")
	e.ok("", "accounts", "set", "box/rotsudo", "--rotate-with", "box/rotadm")
	return s, e, names
}

// TestRotationSSHPasswords: password rotation on a real sshd, by the
// account itself (passwd) and through a rotation account (sudo chpasswd),
// with a live session, and refused by the target's policy.
func TestRotationSSHPasswords(t *testing.T) {
	t.Parallel()
	s, e, names := passwordRotationBox(t)

	// A live session on rotself: one SSH connection stays open across the rotation.
	c := e.connect("box/rotself")
	live, err := ssh.Dial("tcp", c.addr(), &ssh.ClientConfig{User: "any", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("ssh through connect: %v", err)
	}
	defer live.Close()
	run := func(cl *ssh.Client) string {
		t.Helper()
		sess, err := cl.NewSession()
		if err != nil {
			t.Fatalf("session: %v", err)
		}
		defer sess.Close()
		out, err := sess.Output("whoami")
		if err != nil {
			t.Fatalf("whoami: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	run(live)

	// The account changes its own (passwd), or rotadm does (sudo chpasswd).
	for _, u := range []string{"rotself", "rotsudo"} {
		out := e.ok("", "accounts", "rotate", "box/"+u)
		if !strings.Contains(out, "rotated box/"+u) {
			t.Fatalf("rotate %s: %s", u, out)
		}
		if directSSH(s, names[u], "Start-"+u+"-1") == nil {
			t.Fatalf("%s: the old password still logs in", u)
		}
		sshWhoami(t, e, names, u)
	}
	if run(live) != names["rotself"] {
		t.Fatal("the open connection after the rotation")
	}
	fresh, err := ssh.Dial("tcp", c.addr(), &ssh.ClientConfig{User: "any", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil || run(fresh) != names["rotself"] {
		t.Fatalf("a new connection of the live session after the rotation: %v", err)
	}
	fresh.Close()

	// The target's policy refuses the change (here a minimum password age,
	// as a hardened /etc/login.defs gives new users): the rotation fails
	// with passwd's own reason, not only its last line ("password
	// unchanged"), and the account keeps the password it has.
	chage := func(days string) {
		t.Helper()
		if out, err := userDB("", "chage", "-m", days, names["rotself"]); err != nil {
			t.Fatalf("chage: %v %s", err, out)
		}
	}
	chage("1")
	errOut := e.fails("", "accounts", "rotate", "box/rotself")
	if !strings.Contains(errOut, "You must wait longer to change your password") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("rotation refused by a minimum password age: %s", errOut)
	}
	chage("0")
	sshWhoami(t, e, names, "rotself")
	passwordsHidden(t, e, "rotself", "rotsudo", "rotadm")
}

// TestRotationSSHFailuresAndSchedule: rotations that fail keep the
// account's password and say why; a scheduled one goes through rotadm.
func TestRotationSSHFailuresAndSchedule(t *testing.T) {
	t.Parallel()
	_, e, names := passwordRotationBox(t)

	// A rotation account without sudo, and one whose password is wrong.
	e.ok("", "accounts", "set", "box/rotsudo", "--rotate-with", "box/rotself")
	errOut := e.fails("", "accounts", "rotate", "box/rotsudo")
	if !strings.Contains(errOut, "sudo -n chpasswd") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("rotation account without sudo: %s", errOut)
	}
	e.ok("Wrong-Pass-0\n", "accounts", "add", "box/badadm", "--username", names["rotadm"], "--password-stdin", "--no-login-check")
	e.ok("", "accounts", "set", "box/rotsudo", "--rotate-with", "box/badadm")
	errOut = e.fails("", "accounts", "rotate", "box/rotsudo")
	if !strings.Contains(errOut, "refused the stored password credential of account badadm") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("wrong rotation account: %s", errOut)
	}
	sshWhoami(t, e, names, "rotsudo")
	if errOut := e.fails("", "accounts", "rotate", "box/cert"); !strings.Contains(errOut, "no stored credential to rotate") {
		t.Fatalf("certificate account: %s", errOut)
	}

	// On a schedule, through rotadm.
	e.ok("", "accounts", "set", "box/rotsudo", "--rotate-with", "box/rotadm", "--rotation-interval", "2s")
	e.waitRotated("box/rotsudo", time.Now(), 20*time.Second)
	e.ok("", "accounts", "set", "box/rotsudo", "--rotation-interval", "0")
	sshWhoami(t, e, names, "rotsudo")
	passwordsHidden(t, e, "rotself", "rotsudo", "rotadm")
}

// TestRotationSSHKeys: key rotation on a real sshd, by the account itself
// and through a rotation account (sudo), and killed at each step.
func TestRotationSSHKeys(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	keyPEM, keyLine := newKey(t, "")
	names := rotationUsers(t, keyLine, "rotadm", "rotkey", "rotkey2")
	e := newEnv(t)
	e.addSSHResource(s, "box")
	keyFile := filepath.Join(e.dir, "rotkey.pem")
	os.WriteFile(keyFile, keyPEM, 0o600)
	e.addRotationAccounts(names, "rotadm")
	for _, u := range []string{"rotkey", "rotkey2"} {
		e.ok("", "accounts", "add", "box/"+u, "--username", names[u], "--auth", "key", "--private-key-file", keyFile)
	}
	e.ok("", "accounts", "set", "box/rotkey2", "--rotate-with", "box/rotadm")

	// The new key is added, proven, and only then the old one removed.
	oldBlob := strings.Fields(keyLine)[1]
	for _, u := range []string{"rotkey", "rotkey2"} {
		e.ok("", "accounts", "rotate", "box/"+u)
		ak := authorizedKeys(t, names[u])
		if strings.Contains(ak, oldBlob) || !strings.Contains(ak, "# kept by the test") || strings.Count(ak, "ssh-ed25519 ") != 1 || !strings.Contains(ak, "pamd_box/"+u) {
			t.Fatalf("%s authorized_keys after the rotation:\n%s", u, ak)
		}
		sshWhoami(t, e, names, u)
	}

	// Killed at each step: the key account ends with exactly one key, which works.
	for _, step := range []string{"sealed", "changed", "verified", "answered"} {
		e.killAt("box/rotkey", step)
		if ak := authorizedKeys(t, names["rotkey"]); strings.Count(ak, "ssh-ed25519 ") != 1 {
			t.Fatalf("after a kill at %s, authorized_keys:\n%s", step, ak)
		}
		sshWhoami(t, e, names, "rotkey")
	}
	passwordsHidden(t, e, "rotadm")
}
