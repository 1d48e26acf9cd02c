package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/pamd/pamd/protocol/tds"
)

// TestConnectExecRunsTheNativeClient: pamd connect --exec runs the
// resource's client (OpenSSH, FreeTDS tsql) against its local port, passes
// the arguments after -- on, exits with the client's status and ends the
// session when the client exits.
func TestConnectExecRunsTheNativeClient(t *testing.T) {
	t.Parallel()
	s := startSSHD(t)
	e := newEnv(t)
	e.addSSH(s, "box")
	sql, caFile := standin(t, tds.EncryptOff)
	e.addMSSQL("sql1", sql, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")

	// ssh: the remote command after --, its exit status passed on.
	out, errOut, err := e.run("", "connect", "box/key", "--exec", "--", "echo via-exec; exit 5")
	if exitCode(err) != 5 || !strings.Contains(out, "via-exec") {
		t.Fatalf("connect --exec ssh: exit %d, stdout %q, stderr %q", exitCode(err), out, errOut)
	}
	if !strings.Contains(errOut, "running ssh -p ") {
		t.Errorf("connect --exec does not say what it runs: %q", errOut)
	}

	// tsql, named: the query on its stdin.
	out, errOut, err = e.runEnv([]string{"TDSVER=7.4"}, "select N'from exec tsql'\ngo\nexit\n", "connect", "sql1/app", "--exec", "tsql")
	if err != nil || !strings.Contains(out, "from exec tsql") {
		t.Fatalf("connect --exec tsql: %v, stdout %q, stderr %q", err, out, errOut)
	}

	// Both sessions ended when their clients exited.
	var sessions []struct {
		Resource string `json:"resource"`
		Active   bool   `json:"active"`
	}
	e.json(&sessions, "sessions", "list", "-o", "json")
	if len(sessions) != 2 {
		t.Fatalf("want 2 sessions, got %+v", sessions)
	}
	for _, s := range sessions {
		if s.Active {
			t.Errorf("the session to %s is still active after its client exited", s.Resource)
		}
	}

	// A client that is not installed is named, and the session does not stay.
	_, errOut, err = e.runEnv([]string{"PATH=" + t.TempDir()}, "", "connect", "sql1/app", "--exec")
	if err == nil || !strings.Contains(errOut, "none of sqlcmd, tsql is on PATH") {
		t.Fatalf("connect --exec with no client on PATH: %v, %q", err, errOut)
	}
	_, errOut, err = e.runEnv([]string{"PATH=" + os.Getenv("PATH")}, "", "connect", "sql1/app", "--exec", "--", "-x")
	if err == nil {
		t.Fatalf("connect --exec with a bad tsql argument succeeded: %q", errOut)
	}
	e.json(&sessions, "sessions", "list", "-o", "json")
	for _, s := range sessions {
		if s.Active {
			t.Errorf("a session to %s stayed active after --exec failed", s.Resource)
		}
	}
}
