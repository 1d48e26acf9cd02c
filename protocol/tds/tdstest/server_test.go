package tdstest_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
)

func start(t *testing.T) *tdstest.Server {
	s, err := tdstest.Start(map[string]string{"app": "App-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func open(t *testing.T, s *tdstest.Server, user, password, db string) *sql.DB {
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword(user, password), Host: s.Addr,
		RawQuery: url.Values{"database": {db}, "encrypt": {"disable"}, "app name": {"standin-test"}, "dial timeout": {"5"}}.Encode()}
	d, err := sql.Open("sqlserver", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestGoMssqldb proves the stand-in with go-mssqldb, a real client.
func TestGoMssqldb(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := open(t, s, "app", "App-Pass-1", "orders")
	var n int
	if err := d.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1: %d %v", n, err)
	}
	var greeting string
	if err := d.QueryRowContext(ctx, "SELECT N'it''s here' AS greeting").Scan(&greeting); err != nil || greeting != "it's here" {
		t.Fatalf("SELECT string: %q %v", greeting, err)
	}
	var version string
	if err := d.QueryRowContext(ctx, "SELECT @@VERSION").Scan(&version); err != nil || version != tdstest.Version {
		t.Fatalf("@@VERSION: %q %v", version, err)
	}
	if _, err := d.ExecContext(ctx, "SET NOCOUNT ON; USE reports"); err != nil {
		t.Fatalf("SET/USE: %v", err)
	}
	if _, err := d.ExecContext(ctx, "DROP TABLE x"); err == nil {
		t.Fatal("an unknown statement succeeded")
	}
	logins := s.LoginsSeen()
	if len(logins) == 0 || logins[0].Database != "orders" || logins[0].AppName != "standin-test" {
		t.Fatalf("logins seen: %+v", logins)
	}

	// A wrong password fails as SQL Server fails it.
	bad := open(t, s, "app", "wrong", "orders")
	err := bad.PingContext(ctx)
	var me mssql.Error
	if !errors.As(err, &me) || me.Number != 18456 || me.State != 1 || me.Class != 14 {
		t.Fatalf("wrong password: %v (%+v)", err, me)
	}

	// ALTER LOGIN changes the password the stand-in checks.
	if _, err := d.ExecContext(ctx, "ALTER LOGIN app WITH PASSWORD = 'New-Pass-2' OLD_PASSWORD = 'App-Pass-1'"); err != nil {
		t.Fatalf("ALTER LOGIN: %v", err)
	}
	if err := open(t, s, "app", "New-Pass-2", "orders").PingContext(ctx); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	if err := open(t, s, "app", "App-Pass-1", "orders").PingContext(ctx); err == nil {
		t.Fatal("the old password still works")
	}
	// As SQL Server: a login changes its own password only with the old
	// one, another's only with ALTER ANY LOGIN, and CHECK_POLICY refuses
	// simple passwords.
	s.Logins["other"] = "Other-Pass-1"
	for _, c := range []struct {
		stmt   string
		admin  bool
		policy bool
		number int32
	}{
		{"ALTER LOGIN app WITH PASSWORD = 'x-Pass-3'", false, false, 15151},
		{"ALTER LOGIN app WITH PASSWORD = 'x-Pass-3' OLD_PASSWORD = 'wrong'", false, false, 15151},
		{"ALTER LOGIN other WITH PASSWORD = 'x-Pass-3' OLD_PASSWORD = 'Other-Pass-1'", false, false, 15151},
		{"ALTER LOGIN other WITH PASSWORD = 'alllowercase'", true, true, 15118},
		{"ALTER LOGIN other WITH PASSWORD = 'Other-Pass-2'", true, true, 0},
	} {
		s.Sysadmins, s.CheckPolicy = map[string]bool{"app": c.admin}, c.policy
		_, err := d.ExecContext(ctx, c.stmt)
		var me mssql.Error
		if c.number == 0 && err != nil || c.number != 0 && (!errors.As(err, &me) || me.Number != c.number) {
			t.Errorf("%s (admin %v, policy %v): %v, want error %d", c.stmt, c.admin, c.policy, err, c.number)
		}
	}
	if s.Logins["other"] != "Other-Pass-2" {
		t.Errorf("the sysadmin's change did not take: %q", s.Logins["other"])
	}
	_ = fmt.Sprint
}

// TestFreeTDS proves the stand-in with FreeTDS's tsql, a second real client.
func TestFreeTDS(t *testing.T) {
	if _, err := exec.LookPath("tsql"); err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatal("tsql (freetds-bin) is required; scripts/peers installs it")
		}
		t.Skip("tsql not installed; scripts/peers installs it")
	}
	s := start(t)
	_, port, _ := net.SplitHostPort(s.Addr)
	run := func(password, input string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "tsql", "-H", "127.0.0.1", "-p", port, "-U", "app", "-P", password)
		cmd.Env = append(os.Environ(), "TDSVER=7.4")
		cmd.Stdin = strings.NewReader(input)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := run("App-Pass-1", "select 41\ngo\nselect N'from tsql'\ngo\nexit\n")
	if !strings.Contains(out, "41") || !strings.Contains(out, "from tsql") || strings.Count(out, "(1 row affected)") != 2 {
		t.Fatalf("tsql:\n%s", out)
	}
	if out := run("wrong", "select 1\ngo\nexit\n"); !strings.Contains(out, "Msg 18456 (severity 14, state 1)") || !strings.Contains(out, "Login failed for user 'app'.") {
		t.Fatalf("tsql with a wrong password:\n%s", out)
	}
}

func testTLS(t *testing.T) *tls.Config {
	return pkitest.New(t, pki.Leaf{CommonName: "standin"}).ServerConfig()
}

// TestEncryptionModes proves every PRELOGIN encryption mode with go-mssqldb:
// the TLS handshake inside PRELOGIN packets, login-only and full encryption.
func TestEncryptionModes(t *testing.T) {
	cfg := testTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name    string
		server  byte
		encrypt string // go-mssqldb's encrypt setting
		works   bool
	}{
		{"login-only (OFF/false)", tds.EncryptOff, "false", true},
		{"full on request (OFF/true)", tds.EncryptOff, "true", true},
		{"server requires, client plain (REQ/disable)", tds.EncryptReq, "disable", false},
		{"server requires (ON/false)", tds.EncryptOn, "false", true},
		{"no TLS (NOT_SUP/disable)", tds.EncryptNotSup, "disable", true},
		{"client requires, server cannot (NOT_SUP/true)", tds.EncryptNotSup, "true", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tdstest.StartTLS(map[string]string{"app": "App-Pass-1"}, tt.server, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("app", "App-Pass-1"), Host: s.Addr,
				RawQuery: url.Values{"encrypt": {tt.encrypt}, "TrustServerCertificate": {"true"}, "dial timeout": {"5"}}.Encode()}
			d, _ := sql.Open("sqlserver", u.String())
			defer d.Close()
			var n int
			err = d.QueryRowContext(ctx, "SELECT 7").Scan(&n)
			if tt.works && (err != nil || n != 7) {
				t.Fatalf("want a working connection: %d %v", n, err)
			}
			if !tt.works && err == nil {
				t.Fatal("connected, want a refusal")
			}
			if tt.works && len(s.LoginsSeen()) != 1 {
				t.Fatalf("logins seen: %d", len(s.LoginsSeen()))
			}
		})
	}
}

// TestFreeTDSEncryptionRequired: tsql with "encryption = require" logs in
// over TLS carried inside PRELOGIN.
func TestFreeTDSEncryptionRequired(t *testing.T) {
	if _, err := exec.LookPath("tsql"); err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatal("tsql (freetds-bin) is required; scripts/peers installs it")
		}
		t.Skip("tsql not installed")
	}
	s, err := tdstest.StartTLS(map[string]string{"app": "App-Pass-1"}, tds.EncryptOff, testTLS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conf := t.TempDir() + "/freetds.conf"
	os.WriteFile(conf, []byte("[global]\n\ttds version = 7.4\n\tencryption = require\n"), 0o600)
	_, port, _ := net.SplitHostPort(s.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tsql", "-H", "127.0.0.1", "-p", port, "-U", "app", "-P", "App-Pass-1")
	cmd.Env = append(os.Environ(), "FREETDSCONF="+conf)
	cmd.Stdin = strings.NewReader("select N'over tls'\ngo\nexit\n")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "over tls") {
		t.Fatalf("tsql with encryption required:\n%s", out)
	}
}

// TestNTLM: Windows logins by NTLMv2 through SSPI, with go-mssqldb and tsql.
func TestNTLM(t *testing.T) {
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Windows = map[string]string{`EXAMPLE\alice`: "Win-Pass-1"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		password string
		ok       bool
	}{{"Win-Pass-1", true}, {"wrong", false}} {
		u := &url.URL{Scheme: "sqlserver", User: url.UserPassword(`EXAMPLE\alice`, tt.password), Host: s.Addr,
			RawQuery: url.Values{"encrypt": {"disable"}, "dial timeout": {"5"}}.Encode()}
		d, _ := sql.Open("sqlserver", u.String())
		var n int
		err := d.QueryRowContext(ctx, "SELECT 5").Scan(&n)
		d.Close()
		var me mssql.Error
		switch {
		case tt.ok && (err != nil || n != 5):
			t.Fatalf("go-mssqldb NTLM login: %d %v", n, err)
		case !tt.ok && (!errors.As(err, &me) || me.Number != 18456 || !strings.Contains(me.Message, `EXAMPLE\alice`)):
			t.Fatalf("go-mssqldb NTLM with a wrong password: %v", err)
		}
	}
	if _, err := exec.LookPath("tsql"); err != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	for _, tt := range []struct {
		password, want string
	}{{"Win-Pass-1", "from ntlm"}, {"wrong", "Msg 18456"}} {
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(tctx, "tsql", "-H", "127.0.0.1", "-p", port, "-U", `EXAMPLE\alice`, "-P", tt.password)
		cmd.Env = append(os.Environ(), "TDSVER=7.4")
		cmd.Stdin = strings.NewReader("select N'from ntlm'\ngo\nexit\n")
		out, _ := cmd.CombinedOutput()
		cancel()
		if !strings.Contains(string(out), tt.want) {
			t.Fatalf("tsql NTLM (%s):\n%s", tt.password, out)
		}
	}
}
