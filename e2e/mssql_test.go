package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
)

const (
	sqlPassword = "Sql-Stored-Pass-9f3"
	winPassword = "Win-Stored-Pass-7c1"
	krbPassword = "Krb-Stored-Pass-2d8"
	standinSPN  = "MSSQLSvc/sql.example.test:1433"
)

// standin starts the SQL Server stand-in offering encryption as given,
// with a certificate for 127.0.0.1 from a CA written to caFile.
func standin(t *testing.T, encryption byte) (s *tdstest.Server, caFile string) {
	p := pkitest.New(t, pki.Leaf{CommonName: "standin"})
	caFile = filepath.Join(t.TempDir(), "standin-ca.pem")
	os.WriteFile(caFile, p.CAPEM, 0o600)
	s, err := tdstest.StartTLS(map[string]string{"app": sqlPassword}, encryption, p.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, caFile
}

func (e *env) addMSSQL(name string, s *tdstest.Server, extra ...string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(s.Addr)
	e.ok("", append([]string{"resources", "add", "--type", "mssql", "--name", name, "--gateway", "gw1", "--host", host, "--port", port, "--database", "orders"}, extra...)...)
}

type mssqlConnection struct {
	connection
	Database  string `json:"database"`
	TLSCAFile string `json:"tls_ca_file"`
}

func (e *env) connectMSSQL(target string, extra ...string) *mssqlConnection {
	c := e.connect(target, extra...)
	var m mssqlConnection
	line, _, _ := strings.Cut(c.proc.stdout.String(), "\n")
	json.Unmarshal([]byte(line), &m)
	m.connection = *c
	return &m
}

func sqlDB(t *testing.T, addr string, q url.Values) *sql.DB {
	if q.Get("encrypt") == "" {
		q.Set("encrypt", "disable")
	}
	q.Set("dial timeout", "10")
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("anyone", ""), Host: addr, RawQuery: q.Encode()}
	d, err := sql.Open("sqlserver", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type queryRecord struct {
	Type, Command, Data, Database, Error string
	Code                                 int
	Status                               *int
	Rows, Affected                       int64
	DurationMS                           float64 `json:"duration_ms"`
	Truncated                            *struct {
		Field  string
		Length int64
		SHA256 string
	}
}

// tap is a TCP forwarder that keeps every byte the client receives.
type tap struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
}

func startTap(t *testing.T, target string) *tap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tp := &tap{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					tp.mu.Lock()
					tp.got.Write(buf[:n])
					tp.mu.Unlock()
					if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
						return
					}
				}
			}()
		}
	}()
	return tp
}

// TestMSSQLGoClientThroughConnect: go-mssqldb through pamd connect to a
// stand-in that encrypts with a certificate the resource verifies: queries,
// RPC, prepared statements, 100,000 rows, a 10 MB batch, a client that
// requires encryption, and the query log. (A cancel:
// TestMSSQLCancelKeepsTheConnection.)
func TestMSSQLGoClientThroughConnect(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--auth", "sql", "--username", "app", "--password-stdin")
	checked := len(s.LoginsSeen()) // the login check's
	c := e.connectMSSQL("sql1/app")
	if c.Database != "orders" || c.TLSCAFile == "" {
		t.Fatalf("connect output: %s", c.proc.stdout.String())
	}
	tp := startTap(t, c.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := sqlDB(t, tp.addr, url.Values{"app name": {"e2e-app"}})

	var n int
	if err := d.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1: %d %v", n, err)
	}
	var label string
	if err := d.QueryRowContext(ctx, "SELECT @p1 AS who", "through pamd").Scan(&label); err != nil || label != "through pamd" {
		t.Fatalf("sp_executesql: %q %v", label, err)
	}
	st, err := d.PrepareContext(ctx, "SELECT @p1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.QueryRowContext(ctx, 77).Scan(&n); err != nil || n != 77 {
		t.Fatalf("prepared: %d %v", n, err)
	}
	st.Close()
	rows, err := d.QueryContext(ctx, "SELECT TOP (100000) n, label FROM numbers")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for rows.Next() {
		count++
	}
	if rows.Err() != nil || count != 100000 {
		t.Fatalf("100,000 rows: read %d, %v", count, rows.Err())
	}
	big := strings.Repeat("y", 5<<20)
	if err := d.QueryRowContext(ctx, "SELECT LEN(N'"+big+"')").Scan(&n); err != nil || n != len(big) {
		t.Fatalf("10 MB batch: %d %v", n, err)
	}
	if _, err := d.ExecContext(ctx, "DROP TABLE nothing"); err == nil {
		t.Fatal("an unsupported statement succeeded")
	}
	if logins := s.LoginsSeen()[checked:]; logins[0].UserName != "app" || logins[0].AppName != "e2e-app" || logins[0].Database != "orders" {
		t.Fatalf("the server saw LOGIN7 %+v", logins[0])
	}

	// A client that requires encryption: TLS with pamd's certificate, once
	// trusted blindly and once verified with the CA connect wrote.
	enc := sqlDB(t, c.addr(), url.Values{"encrypt": {"true"}, "TrustServerCertificate": {"true"}})
	if err := enc.QueryRowContext(ctx, "SELECT 11").Scan(&n); err != nil || n != 11 {
		t.Fatalf("encrypt=true: %d %v", n, err)
	}
	verified := sqlDB(t, c.addr(), url.Values{"encrypt": {"true"}, "certificate": {c.TLSCAFile}, "hostNameInCertificate": {"127.0.0.1"}})
	if err := verified.QueryRowContext(ctx, "SELECT 12").Scan(&n); err != nil || n != 12 {
		t.Fatalf("encrypt=true verified with %s: %d %v", c.TLSCAFile, n, err)
	}

	var recs []queryRecord
	e.waitFor("the query log", 10*time.Second, func() bool {
		e.json(&recs, "sessions", "logs", c.SessionID, "-o", "json")
		// Any record, not the last: a pooled connection's end may come after.
		return slices.ContainsFunc(recs, func(r queryRecord) bool { return strings.Contains(r.Command, "SELECT 12") })
	})
	find := func(pred func(queryRecord) bool) *queryRecord {
		for i := range recs {
			if pred(recs[i]) {
				return &recs[i]
			}
		}
		return nil
	}
	if r := find(func(r queryRecord) bool { return r.Type == "sql" && r.Command == "SELECT 1" }); r == nil || r.Rows != 1 || *r.Status != 1 || r.Database != "orders" {
		t.Fatalf("SELECT 1 log: %+v", r)
	}
	if r := find(func(r queryRecord) bool { return r.Type == "rpc" && r.Command == "sp_executesql" }); r == nil || !strings.Contains(r.Data, "N'SELECT @p1 AS who'") || !strings.Contains(r.Data, "@p1 = N'through pamd'") || r.Rows != 1 {
		t.Fatalf("sp_executesql log: %+v", r)
	}
	if r := find(func(r queryRecord) bool { return r.Type == "rpc" && strings.Contains(r.Data, "@p1 = 77") }); r == nil || r.Rows != 1 {
		t.Fatalf("prepared statement log: %+v", r)
	}
	if r := find(func(r queryRecord) bool { return strings.HasPrefix(r.Command, "SELECT TOP (100000)") }); r == nil || r.Rows != 100000 {
		t.Fatalf("100,000-row log: %+v", r)
	}
	// The 10 MB batch: its head and end, its length and hash.
	bigStmt := "SELECT LEN(N'" + big + "')"
	bigSum := sha256.Sum256([]byte(bigStmt))
	if r := find(func(r queryRecord) bool { return strings.HasPrefix(r.Command, "SELECT LEN(") }); r == nil || len(r.Command) > 130<<10 ||
		!strings.HasSuffix(r.Command, "yyy')") || r.Truncated == nil || r.Truncated.Field != "command" ||
		r.Truncated.Length != int64(len(bigStmt)) || r.Truncated.SHA256 != hex.EncodeToString(bigSum[:]) {
		t.Fatalf("10 MB batch log: %v", r != nil)
	}
	if r := find(func(r queryRecord) bool { return r.Command == "DROP TABLE nothing" }); r == nil || *r.Status != 0 || r.Code != 102 {
		t.Fatalf("failed statement log: %+v", r)
	}
	text := e.ok("", "sessions", "logs", c.SessionID)
	if !strings.Contains(text, "SELECT TOP (100000) n, label FROM numbers") || !strings.Contains(text, "100000 rows") ||
		!strings.Contains(text, "[truncated: command of "+strconv.Itoa(len(bigStmt))+" bytes, sha256 "+hex.EncodeToString(bigSum[:])) {
		t.Fatalf("sessions logs:\n%.2000s", text)
	}

	// The stored password reached no client, log, audit event or output.
	tp.mu.Lock()
	received := tp.got.Bytes()
	tp.mu.Unlock()
	logJSON := e.ok("", "sessions", "logs", c.SessionID, "-o", "json")
	audit := e.ok("", "audit", "list", "-o", "json")
	for _, form := range [][]byte{[]byte(sqlPassword), utf16le(sqlPassword)} {
		if bytes.Contains(received, form) {
			t.Fatal("the stored password reached the client")
		}
		for name, s := range map[string]string{"log": logJSON, "audit": audit, "process output": e.allOutput()} {
			if strings.Contains(s, string(form)) {
				t.Fatalf("the stored password is in the %s", name)
			}
		}
	}
}

// TestMSSQLCancelKeepsTheConnection: go-mssqldb cancels a large read part
// way (ATTENTION); the connection stays usable and the log has the cancel.
func TestMSSQLCancelKeepsTheConnection(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): on a loaded
	// machine go-mssqldb can miss the acknowledgement of its own cancel and
	// read it as the next query's reply ("after a cancel: no rows"); it
	// happens without -parallel too, more rarely.
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--auth", "sql", "--username", "app", "--password-stdin")
	c := e.connectMSSQL("sql1/app")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := sqlDB(t, c.addr(), url.Values{})
	d.SetMaxOpenConns(1) // the query after the cancel goes on the same connection
	// 200,000 rows (5 MB): far more than the 10 read before the cancel.
	// The stand-in writes a result whole before it reads the ATTENTION, so
	// the rows after those are relayed and dropped until its answer comes.
	qctx, qcancel := context.WithCancel(ctx)
	rows, err := d.QueryContext(qctx, "SELECT TOP (200000) n, label FROM numbers")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && rows.Next(); i++ {
	}
	qcancel()
	rows.Close()
	var n int
	if err := d.QueryRowContext(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Fatalf("after a cancel: %d %v", n, err)
	}
	e.waitFor("the cancel in the query log", 10*time.Second, func() bool {
		var recs []queryRecord
		e.json(&recs, "sessions", "logs", c.SessionID, "-o", "json")
		return slices.ContainsFunc(recs, func(r queryRecord) bool { return r.Type == "attention" })
	})
}

// TestMSSQLCraftedLogin7: a client sends, through pamd connect, a LOGIN7
// whose HostName, AppName and CltIntName are sized so that pamd's
// re-encoding (16-bit offsets) would point Database at the injected
// password, which the server then names back in ENVCHANGE and INFO. The
// client gets a pamd error, and no byte it receives holds the password in
// any form (plain, UTF-16LE, or obfuscated as LOGIN7 carries it).
func TestMSSQLCraftedLogin7(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--auth", "sql", "--username", "app", "--password-stdin")
	c := e.connectMSSQL("sql1/app")

	// pamd sends user "app", the password and ServerName "127.0.0.1"
	// between HostName and Database: AppName and CltIntName fill the rest
	// of 64 Ki bytes, so Database's offset wraps to the password's.
	ac := (0x10000 - 2*len(sqlPassword) - 2*len("127.0.0.1")) / 2
	fields := []string{strings.Repeat("h", 20000), "anyone", "", strings.Repeat("a", ac/2), "srv", "",
		strings.Repeat("c", ac-ac/2), "", strings.Repeat("d", len(sqlPassword))}
	login := make([]byte, 94)
	put16 := func(at, v int) { login[at], login[at+1] = byte(v), byte(v>>8) }
	put32 := func(at, v int) { put16(at, v&0xFFFF); put16(at+2, v>>16) }
	put32(4, 0x74000004)
	put32(8, 4096)
	login[24], login[25] = 0xE0, 0x03
	for i, f := range fields {
		put16(36+4*i, len(login))
		put16(38+4*i, len(f))
		login = append(login, utf16le(f)...)
	}
	for _, at := range []int{78, 82, 86} { // SSPI, AtchDBFile, ChangePassword: empty
		put16(at, len(login))
	}
	put32(0, len(login))

	conn, err := net.Dial("tcp", c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	pre := tds.Prelogin{tds.PreloginVersion: {0, 1, 0, 0, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
	if err := tds.WriteMessage(conn, tds.TypePrelogin, pre.Append(nil), 4096); err != nil {
		t.Fatal(err)
	}
	var received bytes.Buffer
	if _, err := tds.ReadMessage(io.TeeReader(conn, &received), 4096); err != nil {
		t.Fatalf("PRELOGIN reply: %v", err)
	}
	if err := tds.WriteMessage(conn, tds.TypeLogin7, login, 4096); err != nil {
		t.Fatal(err)
	}
	io.Copy(&received, conn) // everything until pamd closes

	obfuscated := utf16le(sqlPassword)
	for i, b := range obfuscated {
		obfuscated[i] = (b<<4 | b>>4) ^ 0xA5
	}
	for _, form := range [][]byte{[]byte(sqlPassword), utf16le(sqlPassword), obfuscated} {
		if bytes.Contains(received.Bytes(), form) {
			t.Fatalf("the stored password reached the client (as % x)", form)
		}
	}
	if !bytes.Contains(received.Bytes(), utf16le("pamd: the client's LOGIN7 was refused")) {
		t.Fatalf("the client got no pamd error: %q", received.Bytes())
	}
	for _, l := range s.LoginsSeen() {
		if l.UserName == "app" && len(l.HostName) > 128 {
			t.Fatal("the crafted LOGIN7 reached the server")
		}
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func lookPeer(t *testing.T, name, path string) string {
	if path == "" {
		p, err := exec.LookPath(name)
		needPeers(t, name, err == nil)
		return p
	}
	_, err := os.Stat(path)
	needPeers(t, name+" ("+path+")", err == nil)
	return path
}

// TestMSSQLRealClientsThroughConnect: sqlcmd, tsql, pymssql and tedious,
// each with the lines pamd connect prints.
func TestMSSQLRealClientsThroughConnect(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	c := e.connect("sql1/app")
	// A second connect prints for people: the lines to paste. Its port is
	// one freePort gives, not c.Port+1, which another process may hold.
	_, free, _ := net.SplitHostPort(freePort(t))
	out := e.start(nil, "connect", "sql1/app", "--port", free)
	var lines string
	e.waitFor("connect's help lines", 20*time.Second, func() bool {
		select {
		case <-out.done:
			t.Fatalf("pamd connect exited: %v\n%s", out.err, out.stderr.String())
		default:
		}
		lines = out.stdout.String()
		return strings.Contains(lines, "Ctrl-C")
	})
	for _, want := range []string{"sqlcmd -S 127.0.0.1,", " -d orders", "tsql -H 127.0.0.1 -p ", "leave the password empty", "sqlcmd -C"} {
		if !strings.Contains(lines, want) {
			t.Fatalf("connect output lacks %q:\n%s", want, lines)
		}
	}
	port := strconv.Itoa(c.Port)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := func(name string, cmd *exec.Cmd, want string) {
		t.Helper()
		outb, err := cmd.CombinedOutput()
		if !strings.Contains(string(outb), want) {
			t.Fatalf("%s (%v):\n%s", name, err, outb)
		}
	}

	sqlcmd := lookPeer(t, "sqlcmd", filepath.Join(repoRoot(), ".cache", "peers", "sqlcmd"))
	run("sqlcmd", exec.CommandContext(ctx, sqlcmd, "-S", "127.0.0.1,"+port, "-d", "orders", "-Q", "SELECT N'from sqlcmd'"), "from sqlcmd")
	run("sqlcmd -N -C", exec.CommandContext(ctx, sqlcmd, "-S", "127.0.0.1,"+port, "-N", "-C", "-Q", "SELECT N'sqlcmd over tls'"), "sqlcmd over tls")

	tsql := exec.CommandContext(ctx, lookPeer(t, "tsql", ""), "-H", "127.0.0.1", "-p", port, "-D", "orders", "-U", "pamd", "-P", "")
	tsql.Env, tsql.Stdin = append(os.Environ(), "TDSVER=7.4"), strings.NewReader("select N'from tsql'\ngo\nexit\n")
	run("tsql", tsql, "from tsql")

	py := lookPeer(t, "python3", "/usr/bin/python3")
	if exec.Command(py, "-c", "import pymssql").Run() != nil {
		needPeers(t, "pymssql (python3-pymssql)", false)
	}
	run("pymssql", exec.CommandContext(ctx, py, "-c", `
import pymssql, sys
c = pymssql.connect(server="127.0.0.1", port=int(sys.argv[1]), user="pamd", password="", database="orders")
cur = c.cursor()
cur.execute("SELECT %s AS v", ("from pymssql",))
print(cur.fetchone()[0])
cur.execute("SELECT TOP (1000) n, label FROM numbers")
print("rows", len(cur.fetchall()))
`, port), "rows 1000")

	node, err := exec.LookPath("node")
	needPeers(t, "node", err == nil)
	mod := filepath.Join(repoRoot(), ".cache", "peers", "node_modules", "tedious")
	lookPeer(t, "tedious", mod)
	run("tedious", exec.CommandContext(ctx, node, "-e", `
const { Connection, Request, TYPES } = require(process.argv[1]);
const c = new Connection({ server: "127.0.0.1", options: { port: +process.argv[2], database: "orders", encrypt: false, trustServerCertificate: true },
  authentication: { type: "default", options: { userName: "pamd", password: "" } } });
c.on("connect", err => {
  if (err) { console.log("connect failed", err.message); process.exit(1); }
  const r = new Request("SELECT @v AS v", err => {
    if (err) console.log("failed", err.message);
    // A prepared statement: sp_prepare, then sp_execute with the handle.
    const p = new Request("SELECT @n", err => { if (err) console.log("prepare failed", err.message); });
    p.addParameter("n", TYPES.Int);
    p.on("row", cols => { console.log("prepared", cols[0].value); c.close(); });
    p.on("prepared", () => c.execute(p, { n: 42 }));
    c.prepare(p);
  });
  r.addParameter("v", TYPES.NVarChar, "from tedious");
  r.on("row", cols => console.log(cols[0].value));
  c.execSql(r);
});
c.connect();
`, mod, port), "prepared 42")
}

// TestMSSQLWindowsLogins: NTLM and Kerberos accounts (a real MIT KDC),
// and each way their login can fail, reaching the client as a pamd error.
func TestMSSQLWindowsLogins(t *testing.T) {
	t.Parallel()
	kdc := tdstest.StartKDC(t)
	kdc.AddUser(t, "svc_reports", krbPassword)
	s, _ := standin(t, tds.EncryptOff)
	s.Windows = map[string]string{`EXAMPLE\svc_app`: winPassword}
	s.Keytab = kdc.AddService(t, standinSPN)
	e := newEnv(t)
	e.addMSSQL("win", s, "--tls-reject-unauthorized=false")
	e.ok(winPassword+"\n", "accounts", "add", "win/ntlm", "--auth", "ntlm", "--domain", "EXAMPLE", "--username", "svc_app", "--password-stdin")
	e.ok(krbPassword+"\n", "accounts", "add", "win/krb", "--auth", "kerberos", "--realm", "example.test", "--spn", standinSPN, "--kdc", kdc.Addr, "--username", "svc_reports", "--password-stdin")
	// Each way a login fails, stored unchecked so that connections meet it.
	e.ok("wrong-one\n", "accounts", "add", "win/badntlm", "--auth", "ntlm", "--domain", "EXAMPLE", "--username", "svc_app", "--password-stdin", "--no-login-check")
	e.ok("wrong-one\n", "accounts", "add", "win/badkrb", "--auth", "kerberos", "--realm", "EXAMPLE.TEST", "--spn", standinSPN, "--kdc", kdc.Addr, "--username", "svc_reports", "--password-stdin", "--no-login-check")
	e.ok(krbPassword+"\n", "accounts", "add", "win/nokdc", "--auth", "kerberos", "--realm", "EXAMPLE.TEST", "--spn", standinSPN, "--kdc", freePort(t), "--username", "svc_reports", "--password-stdin", "--no-login-check")
	e.ok(krbPassword+"\n", "accounts", "add", "win/nospn", "--auth", "kerberos", "--realm", "EXAMPLE.TEST", "--spn", "MSSQLSvc/nowhere.example.test:1433", "--kdc", kdc.Addr, "--username", "svc_reports", "--password-stdin", "--no-login-check")
	if out := e.fails("x\n", "accounts", "add", "win/x", "--auth", "kerberos", "--username", "u", "--password-stdin"); !strings.Contains(out, "--realm") {
		t.Fatalf("kerberos without a realm: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tt := range []struct{ account, want string }{
		{"ntlm", ""},
		{"krb", ""},
		{"badntlm", "pamd: SQL Server refused the stored credentials of account badntlm (error 18456"},
		{"badkrb", "pamd: Kerberos: pre-authentication failed for svc_reports@EXAMPLE.TEST"},
		{"nokdc", "is unreachable"},
		{"nospn", "pamd: Kerberos: unknown SPN MSSQLSvc/nowhere.example.test:1433"},
	} {
		c := e.connectMSSQL("win/" + tt.account)
		var n int
		err := sqlDB(t, c.addr(), url.Values{}).QueryRowContext(ctx, "SELECT 3").Scan(&n)
		if tt.want == "" && (err != nil || n != 3) {
			t.Fatalf("%s: %d %v", tt.account, n, err)
		}
		var me mssql.Error
		if tt.want != "" && (!errors.As(err, &me) || !strings.Contains(me.Message, tt.want)) {
			t.Fatalf("%s: got %v, want a TDS error containing %q", tt.account, err, tt.want)
		}
		if tt.account == "krb" {
			tsql := exec.CommandContext(ctx, lookPeer(t, "tsql", ""), "-H", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "pamd", "-P", "")
			tsql.Env, tsql.Stdin = append(os.Environ(), "TDSVER=7.4"), strings.NewReader("select N'tsql as kerberos'\ngo\nexit\n")
			if out, _ := tsql.CombinedOutput(); !strings.Contains(string(out), "tsql as kerberos") {
				t.Fatalf("tsql through a Kerberos account:\n%s", out)
			}
		}
		c.proc.cmd.Process.Signal(os.Interrupt)
	}
	seen := s.LoginsSeen()
	if len(seen) < 2 || seen[0].OptionFlags2&tds.Flags2IntegratedSecurity == 0 {
		t.Fatalf("the server saw no integrated login: %+v", seen)
	}
	for _, secret := range []string{winPassword, krbPassword, "wrong-one"} {
		if strings.Contains(e.allOutput(), secret) {
			t.Fatalf("a stored password is in a process's output")
		}
	}
}

// TestMSSQLExpiry: at expiry the connection is cut within a second.
func TestMSSQLExpiry(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): it asserts a 1 s window.
	s, _ := standin(t, tds.EncryptNotSup)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls=false")
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	c := e.connectMSSQL("sql1/app", "--duration", "3s")
	d := sqlDB(t, c.addr(), url.Values{})
	d.SetMaxOpenConns(1)
	ctx := context.Background()
	var n int
	if err := d.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c.ExpiresAt)) // the expiry is what is tested
	e.waitFor("queries to fail within a second of the expiry", time.Second, func() bool {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return d.QueryRowContext(qctx, "SELECT 1").Scan(&n) != nil
	})
}
