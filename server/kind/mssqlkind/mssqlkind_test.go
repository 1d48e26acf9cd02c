package mssqlkind

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// TestSummaryShowsTruncation: a cut statement is marked truncated with the
// whole's length and hash, and its one-line summary keeps its end.
func TestSummaryShowsTruncation(t *testing.T) {
	ok := 1
	r := &tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "SELECT 1 /*" + strings.Repeat("pad ", 1000) + "…[pamd: cut]…" + strings.Repeat("pad ", 1000) + "*/; DROP TABLE audit_log",
		Truncated: &tunnel.Cut{Field: "command", Length: 2457621, SHA256: "ab12"}}
	if s := sqlSummary(r); !strings.HasPrefix(s, "SELECT 1 /*pad") || !strings.HasSuffix(s, "*/; DROP TABLE audit_log") || len([]rune(s)) > 210 {
		t.Fatalf("statement %q", s)
	}
	line := (&Kind{}).Summary(r)
	if !strings.HasPrefix(line, "[app] SELECT 1 /*pad") || !strings.Contains(line, "*/; DROP TABLE audit_log  0 rows  0.0 ms  [truncated: command of 2457621 bytes, sha256 ab12") {
		t.Fatalf("summary %q", line)
	}
}

// TestSummary: requests, procedure calls and failures as one line each;
// records every kind has rendered alike.
func TestSummary(t *testing.T) {
	ok, failed := 1, 0
	for _, c := range []struct {
		r    tunnel.Record
		want string
	}{
		{tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "SELECT\n  n\tFROM numbers", Rows: 3, DurationMS: 1.25}, "[app] SELECT n FROM numbers  3 rows  1.2 ms"},
		{tunnel.Record{Type: "sql", Status: &ok, Database: "app", Command: "UPDATE t SET a = 1", Affected: 2}, "[app] UPDATE t SET a = 1  0 rows, 2 affected  0.0 ms"},
		{tunnel.Record{Type: "rpc", Status: &ok, Database: "app", Command: "sp_executesql", Data: "@p1=1"}, "[app] EXEC sp_executesql @p1=1  0 rows  0.0 ms"},
		{tunnel.Record{Type: "sql", Status: &failed, Database: "app", Command: "DROP TABLE nothing", Code: 102, Error: "bad"}, "[app] DROP TABLE nothing  error 102: bad  0.0 ms"},
		{tunnel.Record{Type: "attention", Status: &failed, Database: "app", Error: "cancelled"}, "[app]   failed: cancelled  0.0 ms"},
		{tunnel.Record{Type: "error", Data: "login failed"}, "error: login failed"},
		{tunnel.Record{Type: "o", Data: "x"}, ""},
	} {
		if got := (&Kind{}).Summary(&c.r); got != c.want {
			t.Errorf("%s record: %q, want %q", c.r.Type, got, c.want)
		}
	}
}

// TestStrictOption: tls_strict (TDS 8.0) is stored only when on, needs
// TLS, and reaches the descriptor.
func TestStrictOption(t *testing.T) {
	for _, c := range []struct {
		opts map[string]string
		want string // "" stored as true, "-" not stored, else the error says this
	}{
		{map[string]string{"tls_strict": "true"}, ""},
		{map[string]string{"tls_strict": "false"}, "-"},
		{map[string]string{}, "-"},
		{map[string]string{"tls_strict": "true", "tls": "false"}, "cannot go with --tls=false"},
		{map[string]string{"tls_strict": "yes"}, "want true or false"},
	} {
		_, err := parse(c.opts)
		switch {
		case c.want == "" || c.want == "-":
			if err != nil {
				t.Fatalf("%v: %v", c.opts, err)
			}
			if _, kept := c.opts["tls_strict"]; kept != (c.want == "") || stored(c.opts).Strict != (c.want == "") {
				t.Fatalf("%v stored as %v", c.opts, c.opts)
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Fatalf("%v: %v, want an error saying %q", c.opts, err, c.want)
		}
	}
}

// probeEnv answers probes as a gateway would: an error for a login, or the
// server's version; it keeps the descriptors it was given.
type probeEnv struct {
	kind.Env
	err  error
	seen []tunnel.Descriptor
}

func (e *probeEnv) Probe(_ context.Context, _ *store.Resource, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	e.seen = append(e.seen, d)
	if e.err != nil {
		return &tunnel.ProbeResult{}, e.err
	}
	return &tunnel.ProbeResult{Version: "SQL Server 16.0, TDS 7.4, TLS"}, nil
}

func (e *probeEnv) ResourceCertificate(*store.Resource) (string, string, error) {
	return "CERT", "KEY", nil
}

// TestCheckAccountLogsIn: an account is logged in with through the gateway
// before it is stored, and refused with the server's reason (without the
// gateway's advice for stored accounts) and how to store it anyway;
// --no-login-check skips the login, a pkinit account is stored unchecked
// with a note, and a gateway without a probe is called too old.
func TestCheckAccountLogsIn(t *testing.T) {
	res := &store.Resource{Name: "sql1", Gateway: "gw1", Host: "db", Port: 1433}
	env := &probeEnv{}
	k := New(env)
	good := &store.Account{Name: "app", Username: "app", Password: "pw-1"}
	if err := k.CheckAccount(context.Background(), res, good, false); err != nil || len(env.seen) != 1 {
		t.Fatalf("a working login: %v, %d probes", err, len(env.seen))
	}
	if d := env.seen[0]; d.Account != "app" || d.MSSQL == nil || d.MSSQL.Username != "app" || d.MSSQL.Password != "pw-1" || d.MSSQL.Auth != "sql" || d.Target != "db:1433" {
		t.Fatalf("the probe's descriptor: %+v %+v", d, d.MSSQL)
	}

	env.err = errors.New("SQL Server refused the stored credentials of account bad (error 18456: Login failed for user 'app'.); an administrator must update the account")
	err := k.CheckAccount(context.Background(), res, &store.Account{Name: "bad", Username: "app", Password: "wrong"}, false)
	if err == nil || !strings.Contains(err.Error(), "account bad cannot log in to sql1: SQL Server refused the stored credentials of account bad (error 18456: Login failed for user 'app'.) (fix the credential, or add --no-login-check") ||
		strings.Contains(err.Error(), "an administrator") {
		t.Fatalf("a wrong password: %v", err)
	}
	if err := k.CheckAccount(kind.WithoutLoginCheck(context.Background()), res, &store.Account{Name: "bad", Username: "app", Password: "wrong"}, false); err != nil {
		t.Fatalf("--no-login-check: %v", err)
	}
	if err := k.CheckAccount(kind.WithoutLoginCheck(context.Background()), res, &store.Account{Name: "bad", Username: "app"}, false); err == nil {
		t.Fatal("--no-login-check skipped the settings' check")
	}

	env.err = errors.New(`pamd gateway: no probe for protocol "mssql"`)
	if err := k.CheckAccount(context.Background(), res, &store.Account{Name: "app", Username: "app", Password: "pw-1"}, false); err == nil || !strings.Contains(err.Error(), "gateway gw1 is too old to log in for a check (upgrade it)") {
		t.Fatalf("an old gateway: %v", err)
	}

	env.seen = nil
	ctx, notes := kind.WithNotes(context.Background())
	pk := &store.Account{Name: "alice", Auth: "pkinit", Username: "alice", Realm: "example.test", SPN: "MSSQLSvc/db:1433", KDCCA: testCA(t)}
	if err := k.CheckAccount(ctx, res, pk, false); err != nil || len(env.seen) != 0 {
		t.Fatalf("a pkinit account: %v, %d probes", err, len(env.seen))
	}
	if len(*notes) != 1 || !strings.Contains((*notes)[0], "account alice is stored without a login check") || pk.Realm != "EXAMPLE.TEST" {
		t.Fatalf("notes %q, realm %s", *notes, pk.Realm)
	}
	// An update to pkinit drops the password it no longer uses.
	pk.Password = "left over"
	if err := k.CheckAccount(ctx, res, pk, true); err != nil || pk.Password != "" {
		t.Fatalf("an update to pkinit: %v, password %q", err, pk.Password)
	}
	pk.SID = "S-1-x"
	if err := k.CheckAccount(ctx, res, pk, true); err == nil || !strings.Contains(err.Error(), "--sid") {
		t.Fatalf("a bad SID on update: %v", err)
	}
}

func testCA(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kdc ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
