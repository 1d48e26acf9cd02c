package tdstest_test

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/microsoft/go-mssqldb/integratedauth/krb5"

	"github.com/pamd/pamd/protocol/tds/tdstest"
)

const testSPN = "MSSQLSvc/sql.example.test:1433"

// TestKerberos: Kerberos logins against tickets from a real MIT KDC, with
// go-mssqldb (SPNEGO, no mutual authentication) and FreeTDS tsql (a raw
// krb5 GSS token, from kinit's credential cache, requiring mutual
// authentication: MIT's GSS-API checks the stand-in's AP-REP).
func TestKerberos(t *testing.T) {
	kdc := tdstest.StartKDC(t)
	kdc.AddUser(t, "alice", "Krb-Pass-1")
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, testSPN)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tt := range []struct {
		password string
		ok       bool
	}{{"Krb-Pass-1", true}, {"wrong", false}} {
		u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("alice", tt.password), Host: s.Addr,
			RawQuery: url.Values{"encrypt": {"disable"}, "dial timeout": {"5"}, "authenticator": {"krb5"},
				"krb5-configfile": {kdc.Krb5Conf}, "krb5-realm": {tdstest.Realm}, "ServerSPN": {testSPN}}.Encode()}
		d, _ := sql.Open("sqlserver", u.String())
		var n int
		err := d.QueryRowContext(ctx, "SELECT 9").Scan(&n)
		d.Close()
		if tt.ok && (err != nil || n != 9) {
			t.Fatalf("go-mssqldb Kerberos login: %d %v", n, err)
		}
		if !tt.ok && err == nil {
			t.Fatal("go-mssqldb logged in with a wrong Kerberos password")
		}
	}
	// go-mssqldb does not ask for mutual authentication (and could not
	// read an AP-REP: gokrb5 does not verify one), so it gets none.
	if seen := s.APReqs(); len(seen) != 1 || seen[0].MutualRequired || seen[0].APRepSent {
		t.Fatalf("go-mssqldb's AP-REQs: %+v", seen)
	}

	// A ticket for this SPN does not open a server holding another's key.
	right := s.Keytab
	s.Keytab = kdc.AddService(t, "MSSQLSvc/other.example.test:1433")
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("alice", "Krb-Pass-1"), Host: s.Addr,
		RawQuery: url.Values{"encrypt": {"disable"}, "dial timeout": {"5"}, "authenticator": {"krb5"},
			"krb5-configfile": {kdc.Krb5Conf}, "krb5-realm": {tdstest.Realm}, "ServerSPN": {testSPN}}.Encode()}
	d, _ := sql.Open("sqlserver", u.String())
	err = d.PingContext(ctx)
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "18456") && !strings.Contains(err.Error(), "Login failed") {
		t.Fatalf("a ticket for another service's key: %v", err)
	}
	s.Keytab = right

	if _, err := exec.LookPath("tsql"); err != nil {
		return
	}
	// FreeTDS (MIT GSS-API) asks for mutual authentication and checks the
	// AP-REP the stand-in sends in a raw krb5 GSS token: a good one lets
	// it in, one for another authenticator does not.
	for _, tt := range []struct {
		mode tdstest.APRepMode
		ok   bool
	}{{tdstest.APRepValid, true}, {tdstest.APRepWrongTime, false}} {
		s.APRep = tt.mode
		dir := t.TempDir()
		env := append(kdc.Env(), "KRB5CCNAME=FILE:"+filepath.Join(dir, "cc"), "FREETDSCONF="+filepath.Join(dir, "freetds.conf"))
		kinit := exec.CommandContext(ctx, "kinit", "alice@"+tdstest.Realm)
		kinit.Env, kinit.Stdin = env, strings.NewReader("Krb-Pass-1\n")
		if out, err := kinit.CombinedOutput(); err != nil {
			t.Fatalf("kinit: %v\n%s", err, out)
		}
		host, port, _ := net.SplitHostPort(s.Addr)
		os.WriteFile(filepath.Join(dir, "freetds.conf"), []byte("[standin]\n\thost = "+host+"\n\tport = "+port+
			"\n\ttds version = 7.4\n\tspn = "+testSPN+"\n"), 0o600)
		tsql := exec.CommandContext(ctx, "tsql", "-S", "standin")
		tsql.Env, tsql.Stdin = env, strings.NewReader("select N'by kerberos'\ngo\nexit\n")
		out, _ := tsql.CombinedOutput()
		if got := strings.Contains(string(out), "by kerberos"); got != tt.ok {
			t.Fatalf("tsql with Kerberos, AP-REP mode %d: logged in %v, want %v:\n%s", tt.mode, got, tt.ok, out)
		}
		seen := s.APReqs()
		if last := seen[len(seen)-1]; !last.MutualRequired || !last.APRepSent {
			t.Fatalf("FreeTDS AP-REQ %+v: want mutual-required, and an AP-REP sent", last)
		}
	}
	s.APRep = tdstest.APRepValid
}

// TestRPCAndLargeResults: go-mssqldb's parameterised queries arrive as
// sp_executesql calls, prepared statements as sp_prepexec; the numbers
// table returns as many rows as asked.
func TestRPCAndLargeResults(t *testing.T) {
	s := start(t)
	d := open(t, s, "app", "App-Pass-1", "orders")
	// A guard against a hang, not a speed check: under the race detector on
	// a busy 2-core machine the 10 MB batch alone takes tens of seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var n int
	var label string
	if err := d.QueryRowContext(ctx, "SELECT @p1", 42).Scan(&n); err != nil || n != 42 {
		t.Fatalf("sp_executesql: %d %v", n, err)
	}
	if err := d.QueryRowContext(ctx, "SELECT @p1 AS who", "it's me").Scan(&label); err != nil || label != "it's me" {
		t.Fatalf("sp_executesql with a string: %q %v", label, err)
	}
	st, err := d.PrepareContext(ctx, "SELECT @p1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := st.QueryRowContext(ctx, i*10).Scan(&n); err != nil || n != i*10 {
			t.Fatalf("prepared statement run %d: %d %v", i, n, err)
		}
	}
	st.Close()
	rows, err := d.QueryContext(ctx, "SELECT TOP (100000) n, label FROM numbers")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for rows.Next() {
		if err := rows.Scan(&n, &label); err != nil {
			t.Fatal(err)
		}
		count++
		if n != count || label != "row "+itoa(count) {
			t.Fatalf("row %d: %d %q", count, n, label)
		}
	}
	if err := rows.Err(); err != nil || count != 100000 {
		t.Fatalf("read %d rows: %v", count, err)
	}
	big := strings.Repeat("x", 5<<20) // 10 MB of UTF-16
	if err := d.QueryRowContext(ctx, "SELECT LEN(N'"+big+"')").Scan(&n); err != nil || n != len(big) {
		t.Fatalf("10 MB batch: %d %v", n, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
