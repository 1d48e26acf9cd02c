package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	s, caFile := standin(t, tds.EncryptOff)
	s.AddLogin("rotator", "Rotator-Pass-7q", true)
	s.AddLogin("app2", "App2-Pass-4x", false)
	s.CheckPolicy = true
	e := newEnv(t)
	e.addMSSQL("sql", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql/app", "--username", "app", "--password-stdin")
	e.ok("Rotator-Pass-7q\n", "accounts", "add", "sql/rotator", "--username", "rotator", "--password-stdin")
	e.ok("App2-Pass-4x\n", "accounts", "add", "sql/app2", "--username", "app2", "--password-stdin")
	e.ok("Nt-Pass-1\n", "accounts", "add", "sql/win", "--auth", "ntlm", "--domain", "CORP", "--username", "bob", "--password-stdin")
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
	e.ok("Wrong-Pass-0\n", "accounts", "set", "sql/rotator", "--password-stdin")
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
