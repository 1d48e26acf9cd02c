package e2e

import (
	"context"
	"encoding/json"
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

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
)

// firstBytes is a TCP forwarder that notes the first byte each client
// connection sends: 0x12 PRELOGIN, 0x10 LOGIN7, 0x16 a TLS ClientHello.
type firstBytes struct {
	addr string
	mu   sync.Mutex
	seen []byte
}

func startFirstBytes(t *testing.T, target string) *firstBytes {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &firstBytes{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil {
					return
				}
				f.mu.Lock()
				f.seen = append(f.seen, b[0])
				f.mu.Unlock()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				u.Write(b[:])
				go io.Copy(c, u)
				io.Copy(u, c)
			}()
		}
	}()
	return f
}

func (f *firstBytes) last() byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return 0
	}
	return f.seen[len(f.seen)-1]
}

// jtdsProgram is a JDBC client on jTDS: it connects with the URL given,
// counts rows, runs a prepared statement and prints what it got.
const jtdsProgram = `import java.sql.*;

public class JtdsClient {
    public static void main(String[] args) throws Exception {
        Class.forName("net.sourceforge.jtds.jdbc.Driver");
        try (Connection c = DriverManager.getConnection(args[0], "pamd", "")) {
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT TOP 5 n, label FROM numbers")) {
                int n = 0;
                while (r.next()) n++;
                System.out.println("rows " + n);
            }
            try (PreparedStatement p = c.prepareStatement("SELECT ?")) {
                p.setInt(1, 42);
                try (ResultSet r = p.executeQuery()) {
                    r.next();
                    System.out.println("prepared " + r.getInt(1));
                }
            }
        } catch (SQLException e) {
            System.out.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
`

// jtds compiles the jTDS client in a temporary folder and returns the
// command that runs it with a JDBC URL.
func jtds(t *testing.T) func(ctx context.Context, url string) *exec.Cmd {
	jar := "/usr/share/java/jtds.jar"
	lookPeer(t, "jTDS (libjtds-java)", jar)
	javac := lookPeer(t, "javac", "")
	java := lookPeer(t, "java", "")
	dir := t.TempDir()
	src := filepath.Join(dir, "JtdsClient.java")
	if err := os.WriteFile(src, []byte(jtdsProgram), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(javac, "--release", "17", "-d", dir, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return func(ctx context.Context, url string) *exec.Cmd {
		return exec.CommandContext(ctx, java, "-cp", dir+string(os.PathListSeparator)+jar, "JtdsClient", url)
	}
}

// TestMSSQLClientsAtEveryTDSVersion: real clients at TDS 7.1, 7.2, 7.3 and
// 7.4 through pamd connect (tsql, pymssql and tedious at each; jTDS at
// 7.1, with and without PRELOGIN; go-sqlcmd and go-mssqldb at 7.4), to a
// stand-in that answers each in its own layout. The stand-in sees the
// client's version, and the query log counts each client's rows.
func TestMSSQLClientsAtEveryTDSVersion(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOff)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	c := e.connectMSSQL("sql1/app")
	first := startFirstBytes(t, c.addr())
	_, port, _ := net.SplitHostPort(first.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var mu sync.Mutex
	lastSeen := len(s.LoginsSeen()) // after the login check's
	// run runs a client and checks its output and the version the
	// stand-in saw in its LOGIN7.
	run := func(name string, cmd *exec.Cmd, want string, version tds.Version) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), want) {
			t.Fatalf("%s (%v):\n%s", name, err, out)
		}
		logins := s.LoginsSeen()
		if len(logins) == lastSeen {
			t.Fatalf("%s: the stand-in saw no login", name)
		}
		for _, l := range logins[lastSeen:] {
			if got := tds.Version(l.TDSVersion); got != version && !(version == tds.Version71 && got == tds.Version71Rev1) {
				t.Fatalf("%s: the stand-in saw a LOGIN7 at TDS %v, want %v", name, got, version)
			}
		}
		lastSeen = len(logins)
	}

	tsql := lookPeer(t, "tsql", "")
	py := lookPeer(t, "python3", "/usr/bin/python3")
	if exec.Command(py, "-c", "import pymssql").Run() != nil {
		needPeers(t, "pymssql (python3-pymssql)", false)
	}
	node, err := exec.LookPath("node")
	needPeers(t, "node", err == nil)
	mod := filepath.Join(repoRoot(), ".cache", "peers", "node_modules", "tedious")
	lookPeer(t, "tedious", mod)
	for _, v := range []struct {
		tdsver, tedious string
		version         tds.Version
	}{
		{"7.1", "7_1", tds.Version71},
		{"7.2", "7_2", tds.Version72},
		{"7.3", "7_3_B", tds.Version73B},
		{"7.4", "7_4", tds.Version74},
	} {
		cmd := exec.CommandContext(ctx, tsql, "-H", "127.0.0.1", "-p", port, "-D", "orders", "-U", "pamd", "-P", "")
		cmd.Env, cmd.Stdin = append(os.Environ(), "TDSVER="+v.tdsver), strings.NewReader("select N'tsql at "+v.tdsver+"'\ngo\nSELECT TOP 3 n, label FROM numbers\ngo\nexit\n")
		run("tsql TDSVER="+v.tdsver, cmd, "(3 rows affected)", v.version)

		// pymssql 2.2 names 7.0 to 7.3; without tds_version, FreeTDS
		// negotiates the newest, 7.4.
		pyVersion := v.tdsver
		if v.version == tds.Version74 {
			pyVersion = ""
		}
		run("pymssql tds_version="+pyVersion, exec.CommandContext(ctx, py, "-c", `
import pymssql, sys
c = pymssql.connect(server="127.0.0.1", port=int(sys.argv[1]), user="pamd", password="", database="orders", tds_version=sys.argv[2] or None)
cur = c.cursor()
cur.execute("SELECT %s AS v", ("from pymssql",))
print(cur.fetchone()[0])
cur.execute("SELECT TOP (1000) n, label FROM numbers")
print("rows", len(cur.fetchall()))
`, port, pyVersion), "rows 1000", v.version)

		run("tedious tdsVersion="+v.tedious, exec.CommandContext(ctx, node, "-e", `
const { Connection, Request, TYPES } = require(process.argv[1]);
const c = new Connection({ server: "127.0.0.1", options: { port: +process.argv[2], database: "orders", encrypt: false, tdsVersion: process.argv[3] },
  authentication: { type: "default", options: { userName: "pamd", password: "" } } });
c.on("connect", err => {
  if (err) { console.log("connect failed", err.message); process.exit(1); }
  let rows = 0;
  const r = new Request("SELECT TOP 4 n, label FROM numbers", err => {
    if (err) { console.log("failed", err.message); process.exit(1); }
    console.log("rows", rows);
    const p = new Request("SELECT @v AS v", err => { if (err) console.log("rpc failed", err.message); c.close(); });
    p.addParameter("v", TYPES.Int, 42);
    p.on("row", cols => console.log("rpc", cols[0].value));
    c.execSql(p);
  });
  r.on("row", () => rows++);
  c.execSql(r);
});
c.connect();
`, mod, port, v.tedious), "rows 4\nrpc 42", v.version)
	}

	sqlcmd := lookPeer(t, "sqlcmd", filepath.Join(repoRoot(), ".cache", "peers", "sqlcmd"))
	run("sqlcmd", exec.CommandContext(ctx, sqlcmd, "-S", "127.0.0.1,"+port, "-d", "orders", "-Q", "SELECT N'from sqlcmd'"), "from sqlcmd", tds.Version74)
	var n int
	if err := sqlDB(t, first.addr, url.Values{}).QueryRowContext(ctx, "SELECT 74").Scan(&n); err != nil || n != 74 {
		t.Fatalf("go-mssqldb: %d %v", n, err)
	}
	if logins := s.LoginsSeen(); len(logins) != lastSeen+1 || tds.Version(logins[lastSeen].TDSVersion) != tds.Version74 {
		t.Fatalf("go-mssqldb: the stand-in saw %d more logins", len(logins)-lastSeen)
	}
	lastSeen++

	// jTDS speaks TDS 7.1 only; with ssl=off it sends LOGIN7 first.
	java := jtds(t)
	jdbcURL := "jdbc:jtds:sqlserver://127.0.0.1:" + port + "/orders;loginTimeout=20"
	run("jTDS ssl=off", java(ctx, jdbcURL+";ssl=off"), "rows 5\nprepared 42", tds.Version71)
	if b := first.last(); b != tds.TypeLogin7 {
		t.Fatalf("jTDS with ssl=off began with %#x, not LOGIN7", b)
	}
	run("jTDS ssl=request", java(ctx, jdbcURL+";ssl=request"), "rows 5\nprepared 42", tds.Version71)
	if b := first.last(); b != tds.TypePrelogin {
		t.Fatalf("jTDS with ssl=request began with %#x, not PRELOGIN", b)
	}

	// pamd followed every reply: the query log has the rows of each.
	var recs []queryRecord
	e.waitFor("the query log", 20*time.Second, func() bool {
		e.json(&recs, "sessions", "logs", c.SessionID, "-o", "json")
		return len(slices.DeleteFunc(slices.Clone(recs), func(r queryRecord) bool { return !strings.Contains(r.Command+r.Data, "SELECT TOP 5 n") })) >= 2
	})
	for _, want := range []struct {
		command string
		rows    int64
		count   int
	}{
		{"SELECT TOP 3 n, label FROM numbers", 3, 4},         // tsql at each version
		{"SELECT TOP (1000) n, label FROM numbers", 1000, 4}, // pymssql
		{"SELECT TOP 4 n, label FROM numbers", 4, 4},         // tedious
		{"SELECT TOP 5 n, label FROM numbers", 5, 2},         // jTDS
	} {
		got := 0
		for _, r := range recs {
			// A batch's text, or a statement sp_executesql carries (tedious).
			if strings.TrimSpace(r.Command) == want.command || r.Command == "sp_executesql" && strings.Contains(r.Data, "N'"+want.command+"'") {
				if r.Rows != want.rows || r.Status == nil || *r.Status != 1 {
					t.Fatalf("log of %q: %+v", want.command, r)
				}
				got++
			}
		}
		if got != want.count {
			var commands []string
			for _, r := range recs {
				commands = append(commands, strconv.Quote(r.Command))
			}
			t.Fatalf("%d records of %q, want %d; the log has %s", got, want.command, want.count, strings.Join(commands, ", "))
		}
	}
}

// TestMSSQLStrictEncryption: go-sqlcmd -N s (TDS 8.0: TLS before
// PRELOGIN) through pamd connect, verified with the CA connect wrote, to
// a server that is not strict, and to a strict stand-in through a resource
// with tls_strict; a strict client reads a refusal as a pamd error.
func TestMSSQLStrictEncryption(t *testing.T) {
	t.Parallel()
	sqlcmd := lookPeer(t, "sqlcmd", filepath.Join(repoRoot(), ".cache", "peers", "sqlcmd"))
	s, caFile := standin(t, tds.EncryptOn)
	p := pkitest.New(t, pki.Leaf{CommonName: "strict"})
	strictCA := filepath.Join(t.TempDir(), "strict-ca.pem")
	os.WriteFile(strictCA, p.CAPEM, 0o600)
	strict, err := tdstest.StartStrict(map[string]string{"app": sqlPassword}, p.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { strict.Close() })

	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.addMSSQL("sql8", strict, "--tls-ca-file", strictCA, "--option", "tls_strict=true")
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	e.ok(sqlPassword+"\n", "accounts", "add", "sql8/app", "--username", "app", "--password-stdin")
	e.ok("Wrong-Pass-1\n", "accounts", "add", "sql8/wrong", "--username", "app", "--password-stdin", "--no-login-check")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	strictCmd := func(c *mssqlConnection, query string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, sqlcmd, "-S", c.addr(), "-N", "s", "-F", "localhost", "-Q", query)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+c.TLSCAFile) // the resource CA pamd connect wrote
		return cmd
	}
	for _, tt := range []struct {
		target string
		server *tdstest.Server
	}{{"sql1/app", s}, {"sql8/app", strict}} {
		c := e.connectMSSQL(tt.target)
		first := startFirstBytes(t, c.addr())
		c.Host, c.Port = "127.0.0.1", mustPort(t, first.addr)
		if out, err := strictCmd(c, "SELECT N'strict through pamd'").CombinedOutput(); !strings.Contains(string(out), "strict through pamd") {
			t.Fatalf("sqlcmd -N s to %s (%v):\n%s", tt.target, err, out)
		}
		if b := first.last(); b != 0x16 {
			t.Fatalf("sqlcmd -N s began with %#x, not a TLS ClientHello", b)
		}
		logins := tt.server.LoginsSeen()
		v := tds.Version(logins[len(logins)-1].TDSVersion)
		if tt.server == strict && (v != tds.Version80 || !slices.Equal(slices.Compact(strict.ALPN()), []string{"tds/8.0"})) { // the login check's, then the client's
			t.Fatalf("toward the strict server: LOGIN7 at %v, ALPN %q", v, strict.ALPN())
		}
		if tt.server == s && v != tds.Version74 {
			t.Fatalf("toward the server that is not strict: LOGIN7 at %v", v)
		}
	}
	// A refused login reaches the strict client as a pamd error.
	c := e.connectMSSQL("sql8/wrong")
	out, _ := strictCmd(c, "SELECT 1").CombinedOutput()
	if !strings.Contains(string(out), "pamd: SQL Server refused the stored credentials of account wrong") || strings.Contains(string(out), "Wrong-Pass-1") {
		t.Fatalf("sqlcmd -N s with a wrong stored password:\n%s", out)
	}
}

func mustPort(t *testing.T, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMSSQLResourcesTest: pamd resources test reaches the server and logs
// in with each account, saying which work and why the others do not.
func TestMSSQLResourcesTest(t *testing.T) {
	t.Parallel()
	s, caFile := standin(t, tds.EncryptOn)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls-ca-file", caFile)
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	e.ok("Wrong-Pass-3\n", "accounts", "add", "sql1/stale", "--username", "app", "--password-stdin", "--no-login-check")
	type checkRow struct {
		Check  string
		OK     bool
		Detail string
	}
	var checks []checkRow
	out, errOut, err := e.run("", "resources", "test", "sql1", "-o", "json")
	if err == nil || !strings.Contains(errOut, "1 of 3 checks failed") {
		t.Fatalf("a failed login check did not fail the command (%v): %s", err, errOut)
	}
	if err := json.Unmarshal([]byte(out), &checks); err != nil || len(checks) != 3 {
		t.Fatalf("checks: %+v\n%s", checks, out)
	}
	want := []struct {
		check, detail string
		ok            bool
	}{
		{"reach " + s.Addr, "SQL Server 16.0.4219, TLS", true},
		{"log in as account app", "logged in as app (sql), SQL Server 16.0.4219, TDS 7.4, TLS", true},
		{"log in as account stale", "error 18456", false},
	}
	if checks[0].Check != want[0].check { // reaching the server comes first
		t.Fatalf("first check: %+v", checks[0])
	}
	for _, w := range want {
		i := slices.IndexFunc(checks, func(c checkRow) bool { return c.Check == w.check })
		if i < 0 || checks[i].OK != w.ok || !strings.Contains(checks[i].Detail, w.detail) {
			t.Fatalf("checks %+v, want %+v", checks, w)
		}
	}
	text, _, _ := e.run("", "resources", "test", "sql1")
	for _, s := range []string{sqlPassword, "Wrong-Pass-3"} {
		if strings.Contains(text+out+e.allOutput(), s) {
			t.Fatal("a stored password is in the test's output")
		}
	}
	if !strings.Contains(text, "log in as account stale") {
		t.Fatalf("pamd resources test:\n%s", text)
	}
}
