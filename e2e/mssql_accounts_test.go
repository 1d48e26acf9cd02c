package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/server/api"
)

// TestMSSQLAccountLoginCheck: a SQL Server account is logged in with
// (through the gateway) before it is stored. A wrong password is refused
// with the stand-in's reason and nothing is stored; --no-login-check stores
// it; a right one is stored; a server that is down refuses the account
// unless --no-login-check. A new password is checked the same way, a new
// description is not logged in with, and a pkinit account is stored with a
// warning that it was not checked.
func TestMSSQLAccountLoginCheck(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	accounts := func(res string) map[string]api.Account {
		t.Helper()
		var list []api.Account
		e.json(&list, "accounts", "list", res, "-o", "json")
		out := map[string]api.Account{}
		for _, a := range list {
			out[a.Name] = a
		}
		return out
	}

	errOut := e.fails("Wrong-Pass-5\n", "accounts", "add", "sql1/bad", "--username", "app", "--password-stdin")
	for _, want := range []string{"account bad cannot log in to sql1", "error 18456: Login failed for user 'app'.", "add --no-login-check to store it unchecked"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("a wrong password at add: %q lacks %q", errOut, want)
		}
	}
	if strings.Contains(errOut, "Wrong-Pass-5") || strings.Contains(errOut, "an administrator must update") {
		t.Fatalf("a wrong password at add: %q", errOut)
	}
	if _, stored := accounts("sql1")["bad"]; stored {
		t.Fatal("a refused account was stored")
	}
	e.ok("Wrong-Pass-5\n", "accounts", "add", "sql1/bad", "--username", "app", "--password-stdin", "--no-login-check")
	before := len(s.LoginsSeen())
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	if logins := s.LoginsSeen(); len(logins) != before+1 || logins[before].UserName != "app" {
		t.Fatalf("the stand-in saw %d logins for the check", len(logins)-before)
	}
	if got := accounts("sql1"); !got["bad"].HasPassword || !got["app"].HasPassword || got["app"].Auth != "sql" {
		t.Fatalf("stored: %+v", got)
	}

	// A changed password is checked; a description is not logged in with.
	if errOut := e.fails("Wrong-Pass-6\n", "accounts", "set", "sql1/app", "--password-stdin"); !strings.Contains(errOut, "account app cannot log in to sql1") || !strings.Contains(errOut, "Login failed for user 'app'.") {
		t.Fatalf("a wrong new password: %q", errOut)
	}
	// The refused change left the working password.
	var checks []api.ResourceCheck
	out, _, _ := e.run("", "resources", "test", "sql1", "-o", "json")
	if err := json.Unmarshal([]byte(out), &checks); err != nil || !slices.ContainsFunc(checks, func(c api.ResourceCheck) bool { return c.Check == "log in as account app" && c.OK }) {
		t.Fatalf("resources test after the refused change: %s", out)
	}
	before = len(s.LoginsSeen())
	e.ok("", "accounts", "set", "sql1/app", "--description", "checked at add")
	if n := len(s.LoginsSeen()); n != before {
		t.Fatalf("a new description logged in %d times", n-before)
	}
	s.AddLogin("app", "New-App-Pass-2", false)
	e.ok("New-App-Pass-2\n", "accounts", "set", "sql1/app", "--password-stdin")
	if n := len(s.LoginsSeen()); n != before+1 {
		t.Fatalf("a new password logged in %d times", n-before)
	}

	// A server that is down: refused unless stored unchecked.
	host, port, _ := net.SplitHostPort(freePort(t))
	e.ok("", "resources", "add", "--type", "mssql", "--name", "down", "--gateway", "gw1", "--host", host, "--port", port, "--tls=false")
	if errOut := e.fails(sqlPassword+"\n", "accounts", "add", "down/app", "--username", "app", "--password-stdin"); !strings.Contains(errOut, "account app cannot log in to down") {
		t.Fatalf("a server that is down: %q", errOut)
	}
	e.ok(sqlPassword+"\n", "accounts", "add", "down/app", "--username", "app", "--password-stdin", "--no-login-check")

	// pkinit: stored unchecked, and said so.
	before = len(s.LoginsSeen())
	out, errOut, err := e.run("", "accounts", "add", "sql1/alice", "--auth", "pkinit", "--realm", "example.test", "--spn", standinSPN, "--username", "alice", "--kdc-ca-file", caFile)
	if err != nil || !strings.Contains(out, "account sql1/alice added") || !strings.Contains(errOut, "warning: account alice is stored without a login check: a pkinit account logs in with a certificate pamd signs for a live session only") {
		t.Fatalf("a pkinit account (%v):\n%s\n%s", err, out, errOut)
	}
	if n := len(s.LoginsSeen()); n != before {
		t.Fatalf("a pkinit account was logged in with %d times", n-before)
	}
}

// TestMSSQLAccountsSetWindowsSettings: pamd accounts set changes a pkinit
// account's --sid, --upn, --kdc, --kdc-hostname, --realm, --spn and
// --kdc-ca-file as accounts add takes them, checked the same way (a bad SID
// refused); and a Kerberos account's realm, SPN, KDC and keytab, the
// keytab replacing the password and the password the keytab.
func TestMSSQLAccountsSetWindowsSettings(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	show := func(target string) api.Account {
		t.Helper()
		var a api.Account
		e.json(&a, "accounts", "show", target, "-o", "json")
		return a
	}
	e.ok("", "accounts", "add", "sql1/alice", "--auth", "pkinit", "--realm", "example.test", "--spn", standinSPN, "--username", "alice", "--kdc-ca-file", caFile)

	const sid = "S-1-5-21-1004336348-1177238915-682003330-1001"
	out, errOut, err := e.run("", "accounts", "set", "sql1/alice", "--sid", sid, "--upn", "alice@corp.example.test", "--kdc", "dc1.example.test:88",
		"--kdc-hostname", "dc1.example.test", "--realm", "corp.example.test", "--spn", "MSSQLSvc/sql1.corp.example.test:1433", "--kdc-ca-file", caFile)
	if err != nil || !strings.Contains(out, "account sql1/alice updated") || !strings.Contains(errOut, "warning: account alice is stored without a login check") {
		t.Fatalf("accounts set on a pkinit account (%v):\n%s\n%s", err, out, errOut)
	}
	a := show("sql1/alice")
	if a.SID != sid || a.UPN != "alice@corp.example.test" || a.KDC != "dc1.example.test:88" || a.KDCHostname != "dc1.example.test" ||
		a.Realm != "CORP.EXAMPLE.TEST" || a.SPN != "MSSQLSvc/sql1.corp.example.test:1433" || !a.HasKDCCA || a.HasPassword {
		t.Fatalf("after accounts set: %+v", a)
	}
	if text := e.ok("", "accounts", "show", "sql1/alice"); !strings.Contains(text, "SID:       "+sid) || !strings.Contains(text, "KDC:       dc1.example.test:88") || !strings.Contains(text, "KDC CA:    set") {
		t.Fatalf("accounts show:\n%s", text)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--sid", "S-1-x"}, `--sid "S-1-x": want the account's SID`},
		{[]string{"--upn", "alice"}, `--upn "alice": want user@domain`},
		{[]string{"--spn", "HTTP/web"}, "--spn: want the server's service principal"},
		{[]string{"--kdc-ca-file", ""}, "--auth pkinit needs --kdc-ca-file"},
		{[]string{"--kdc-ca-file", filepath.Join(t.TempDir(), "missing.pem")}, "no such file"},
	} {
		if errOut := e.fails("", append([]string{"accounts", "set", "sql1/alice"}, bad.args...)...); !strings.Contains(errOut, bad.want) {
			t.Fatalf("accounts set %q: %q, want %q", bad.args, errOut, bad.want)
		}
	}
	if a := show("sql1/alice"); a.SID != sid || !a.HasKDCCA {
		t.Fatalf("a refused change was stored: %+v", a)
	}
	e.ok("", "accounts", "set", "sql1/alice", "--sid", "")
	if a := show("sql1/alice"); a.SID != "" {
		t.Fatalf("--sid \"\" kept %q", a.SID)
	}

	// Kerberos: no KDC answers here, so the changes are logged in with
	// (and refused) unless --no-login-check.
	kdc := freePort(t)
	e.ok(krbPassword+"\n", "accounts", "add", "sql1/krb", "--auth", "kerberos", "--realm", "example.test", "--spn", standinSPN, "--kdc", kdc,
		"--username", "svc_kt", "--password-stdin", "--no-login-check")
	if errOut := e.fails("", "accounts", "set", "sql1/krb", "--realm", "other.test"); !strings.Contains(errOut, "account krb cannot log in to sql1") {
		t.Fatalf("a Kerberos change logged in with: %q", errOut)
	}
	e.ok("", "accounts", "set", "sql1/krb", "--realm", "other.test", "--spn", "MSSQLSvc/other.test:1433", "--kdc", "kdc.other.test", "--no-login-check")
	if a := show("sql1/krb"); a.Realm != "OTHER.TEST" || a.SPN != "MSSQLSvc/other.test:1433" || a.KDC != "kdc.other.test" || !a.HasPassword || a.HasKeytab {
		t.Fatalf("after accounts set: %+v", a)
	}
	kt := keytab.New()
	if err := kt.AddEntry("svc_kt", "OTHER.TEST", "Kt-Pass-1", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	raw, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "svc_kt.keytab")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("", "accounts", "set", "sql1/krb", "--keytab-file", file, "--no-login-check")
	if a := show("sql1/krb"); !a.HasKeytab || a.HasPassword {
		t.Fatalf("after --keytab-file: %+v", a)
	}
	if errOut := e.fails("", "accounts", "set", "sql1/krb", "--realm", "example.test", "--no-login-check"); !strings.Contains(errOut, "--keytab-file holds no key of svc_kt@EXAMPLE.TEST") {
		t.Fatalf("a realm the keytab has no key of: %q", errOut)
	}
	e.ok(krbPassword+"\n", "accounts", "set", "sql1/krb", "--password-stdin", "--no-login-check")
	if a := show("sql1/krb"); a.HasKeytab || !a.HasPassword {
		t.Fatalf("after --password-stdin: %+v", a)
	}
}
