package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
)

const (
	pgBin        = "/usr/lib/postgresql/15/bin"
	pgAppPass    = "Pg-Stored-Pass-4b7e"
	pgAdminPass  = "Pg-Admin-Pass-c21d"
	pgSystemUser = "postgres" // initdb and the server refuse to run as root
)

// pgServer is a PostgreSQL 15 cluster of the test's own on loopback, with
// a role app (password pgAppPass) owning database orders, every statement
// logged.
type pgServer struct {
	dir, addr string
	caFile    string // the CA of the server's certificate, when TLS is on
	log       string
}

type pgSetup struct {
	auth string // scram-sha-256 (default), md5 or password (clear text)
	tls  bool
}

func needPostgres(t *testing.T) {
	t.Helper()
	_, err := os.Stat(filepath.Join(pgBin, "initdb"))
	_, uerr := user.Lookup(pgSystemUser)
	_, perr := exec.LookPath("psql")
	needPeers(t, "PostgreSQL 15 (postgresql, postgresql-client)", err == nil && uerr == nil && perr == nil)
}

// startPostgres makes a cluster in a directory the postgres system user
// owns and starts it; both go at the end of the test.
func startPostgres(t *testing.T, s pgSetup) *pgServer {
	t.Helper()
	needPostgres(t)
	if s.auth == "" {
		s.auth = "scram-sha-256"
	}
	u, _ := user.Lookup(pgSystemUser)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "pamd-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgServer{dir: dir, addr: freePort(t), log: filepath.Join(dir, "server.log")}
	t.Cleanup(func() {
		exec.Command("runuser", "-u", pgSystemUser, "--", pgBin+"/pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
	})
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(path, uid, gid)
		return path
	}
	os.Chown(dir, uid, gid)
	os.Chmod(dir, 0o755)
	pw := write("pw", []byte(pgAdminPass+"\n"))
	as := func(args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", pgSystemUser, "--"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	as(pgBin+"/initdb", "-D", filepath.Join(dir, "data"), "-U", "pgadmin", "--pwfile="+pw, "--auth="+s.auth, "--no-sync", "--no-instructions")
	_, port, _ := net.SplitHostPort(p.addr)
	encryption := s.auth
	if encryption == "password" {
		encryption = "scram-sha-256"
	}
	conf := []string{"listen_addresses = '127.0.0.1'", "port = " + port, "unix_socket_directories = '" + dir + "'",
		"password_encryption = '" + encryption + "'", "fsync = off", "max_connections = 40", "log_connections = on"}
	if s.tls {
		pair := pkitest.New(t, pki.Leaf{CommonName: "postgres"})
		p.caFile = write("ca.pem", pair.CAPEM)
		os.Chmod(p.caFile, 0o644)
		cert := write("server.crt", append(pair.CertPEM, pair.CAPEM...))
		key := write("server.key", pair.KeyPEM)
		conf = append(conf, "ssl = on", "ssl_cert_file = '"+cert+"'", "ssl_key_file = '"+key+"'")
	}
	f, err := os.OpenFile(filepath.Join(dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(strings.Join(conf, "\n") + "\n")
	f.Close()
	as(pgBin+"/pg_ctl", "-D", filepath.Join(dir, "data"), "-l", p.log, "-w", "-t", "60", "start")
	// The role's password is set before statements are logged; from
	// then on the server's log must never show it.
	p.admin(t, "CREATE ROLE app LOGIN PASSWORD '"+pgAppPass+"'")
	p.admin(t, "CREATE DATABASE orders OWNER app")
	p.admin(t, "ALTER SYSTEM SET log_statement = 'all'")
	p.admin(t, "SELECT pg_reload_conf()")
	return p
}

// admin runs sql as the cluster's superuser, straight to the server.
func (p *pgServer) admin(t *testing.T, sql string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(p.addr)
	cmd := exec.Command("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "pgadmin", "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pgAdminPass, "PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (p *pgServer) serverLog(t *testing.T) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) addPostgres(name string, p *pgServer, extra ...string) {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(p.addr)
	e.ok("", append([]string{"resources", "add", "--type", "postgres", "--name", name, "--gateway", "gw1", "--host", host, "--port", port, "--database", "orders"}, extra...)...)
}

type pgConnection struct {
	connection
	Database  string `json:"database"`
	TLSCAFile string `json:"tls_ca_file"`
	JDBCURL   string `json:"jdbc_url"`
	DSN       string `json:"dsn"`
}

func (e *env) connectPostgres(target string, extra ...string) *pgConnection {
	c := e.connect(target, extra...)
	var m pgConnection
	line, _, _ := strings.Cut(c.proc.stdout.String(), "\n")
	json.Unmarshal([]byte(line), &m)
	m.connection = *c
	return &m
}

// psql runs the real client against addr with the given connection
// settings and no password.
func psql(t *testing.T, addr, settings string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", append([]string{"-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "host=" + host + " port=" + port + " dbname=orders user=nobody " + settings}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD=", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

type pgRecord struct {
	Time                                           time.Time
	Type, Command, Data, Database, Error, Op, Path string
	Status                                         *int
	Rows, Size                                     int64
	DurationMS                                     float64 `json:"duration_ms"`
	Truncated                                      *struct {
		Field  string
		Length int64
		SHA256 string
		Values int
	}
}

// pgLogs is a session's query log, a record per statement (the server
// reads the gateway's batches back one by one).
func (e *env) pgLogs(session string) []pgRecord {
	e.t.Helper()
	var recs []pgRecord
	e.json(&recs, "sessions", "logs", session, "-o", "json")
	return recs
}

// TestPostgresThroughConnect: PostgreSQL 15 with TLS verified against the
// resource's CA and SCRAM: psql with sslmode disable, require and
// verify-full toward pamd, \copy of 100,000 rows both ways, a cancelled
// pg_sleep; pgx with prepared statements, a 10 MB bytea and
// LISTEN/NOTIFY; the query log; the stored password nowhere.
func TestPostgresThroughConnect(t *testing.T) {
	t.Parallel()
	needPeers(t, "psycopg2 (python3-psycopg2)", exec.Command("/usr/bin/python3", "-c", "import psycopg2").Run() == nil)
	p := startPostgres(t, pgSetup{tls: true})
	e := newEnv(t)
	// Without the CA the server's certificate does not verify.
	if errOut := e.fails("", "resources", "add", "--type", "postgres", "--name", "pg0", "--gateway", "gw1", "--host", "127.0.0.1", "--port", portOf(p.addr), "--database", "orders"); !strings.Contains(errOut, "certificate") {
		t.Fatalf("a server certificate from an unknown CA: %s", errOut)
	}
	e.addPostgres("pg1", p, "--tls-ca-file", p.caFile)
	if errOut := e.fails("wrong-password\n", "accounts", "add", "pg1/bad", "--username", "app", "--password-stdin"); !strings.Contains(errOut, "28P01") || !strings.Contains(errOut, "--no-login-check") {
		t.Fatalf("a wrong password: %s", errOut)
	}
	// Unchecked, it is stored; a connection with it then fails at the server.
	e.ok("wrong-password\n", "accounts", "add", "pg1/unchecked", "--username", "app", "--password-stdin", "--no-login-check")
	if out := e.ok("", "accounts", "list", "pg1"); !strings.Contains(out, "unchecked") || strings.Contains(out, "bad") {
		t.Fatalf("accounts after a refused and an unchecked add:\n%s", out)
	}
	e.ok("", "accounts", "rm", "pg1/unchecked")
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	if out := e.ok("", "resources", "test", "pg1"); !strings.Contains(out, "TLS verified") || !strings.Contains(out, "server version 15") {
		t.Fatalf("resources test:\n%s", out)
	}
	c := e.connectPostgres("pg1/app")
	if c.Database != "orders" || c.TLSCAFile == "" || !strings.HasPrefix(c.JDBCURL, "jdbc:postgresql://127.0.0.1:") {
		t.Fatalf("connect output: %s", c.proc.stdout.String())
	}
	tp := startTap(t, c.addr())

	// psql in each sslmode toward pamd; the server sees the stored user
	// over TLS (pg_stat_ssl) whatever the client said.
	for _, mode := range []string{"sslmode=disable", "sslmode=require", "sslmode=verify-full sslrootcert=" + c.TLSCAFile} {
		out, err := psql(t, tp.addr, mode+" application_name=e2e-psql", "-c", "SELECT current_user || ' ' || current_database() || ' ' || s.ssl || ' ' || current_setting('application_name') FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()")
		if err != nil || out != "app orders true e2e-psql" {
			t.Fatalf("psql %s: %q %v", mode, out, err)
		}
	}
	if out, err := psql(t, tp.addr, "sslmode=disable", "-c", "SELECT * FROM nothing"); err == nil || !strings.Contains(out, "does not exist") {
		t.Fatalf("a failing query: %q %v", out, err)
	}

	// GSSENCRequest is declined; the startup goes on in the clear, and the
	// client is in without being asked for a password.
	raw, err := net.DialTimeout("tcp", c.addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	raw.Write(gss)
	answer := make([]byte, 1)
	if _, err := raw.Read(answer); err != nil || answer[0] != 'N' {
		t.Fatalf("GSSENCRequest answered %q %v", answer, err)
	}
	fe := pgproto3.NewFrontend(raw, raw)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "mallory", "database": "postgres"}})
	fe.Flush()
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationOk); !ok {
		t.Fatalf("after the StartupMessage: %T", m)
	}
	raw.Close()

	// \copy of 100,000 rows out of the server and back in.
	dir := t.TempDir()
	csv := filepath.Join(dir, "rows.csv")
	if out, err := psql(t, tp.addr, "sslmode=require", "-c", "CREATE TABLE items (n int, label text)", "-c", "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100000) g"); err != nil {
		t.Fatalf("create: %s %v", out, err)
	}
	if out, err := psql(t, tp.addr, "sslmode=require", "-c", `\copy items TO '`+csv+`' WITH (FORMAT csv)`); err != nil || out != "COPY 100000" {
		t.Fatalf(`\copy out: %q %v`, out, err)
	}
	if out, err := psql(t, tp.addr, "sslmode=require", "-c", "CREATE TABLE items2 (n int, label text)", "-c", `\copy items2 FROM '`+csv+`' WITH (FORMAT csv)`); err != nil || !strings.Contains(out, "COPY 100000") {
		t.Fatalf(`\copy in: %q %v`, out, err)
	}
	if out, _ := psql(t, tp.addr, "sslmode=disable", "-c", "SELECT count(*), sum(n) FROM items2"); out != "100000|5000050000" {
		t.Fatalf("rows copied in: %q", out)
	}

	// A cancel: pg_sleep(30) ends within seconds with SQLSTATE 57014.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://anyone@"+tp.addr+"/orders?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	go func() {
		time.Sleep(time.Second)
		conn.PgConn().CancelRequest(ctx) // a new connection to pamd connect's port
	}()
	start := time.Now()
	_, err = conn.Exec(ctx, "SELECT pg_sleep(30)")
	var pe *pgconn.PgError
	if took := time.Since(start); !errors.As(err, &pe) || pe.Code != "57014" || took > 10*time.Second {
		t.Fatalf("cancelled pg_sleep(30) after %s: %v", took, err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT 41 + 1").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the cancel: %d %v", n, err)
	}

	// Another session cannot cancel this one's query, even with its key.
	c2 := e.connectPostgres("pg1/app")
	go func() {
		time.Sleep(500 * time.Millisecond)
		if k, err := net.Dial("tcp", c2.addr()); err == nil {
			req, _ := (&pgproto3.CancelRequest{ProcessID: conn.PgConn().PID(), SecretKey: conn.PgConn().SecretKey()}).Encode(nil)
			k.Write(req)
			k.Read(make([]byte, 1))
			k.Close()
		}
	}()
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(2)"); err != nil {
		t.Fatalf("another session's cancel reached the query: %v", err)
	}

	// pgx: extended protocol, prepared statements, 10 MB bytea, LISTEN/NOTIFY.
	if _, err := conn.Prepare(ctx, "by_n", "SELECT label FROM items WHERE n = $1"); err != nil {
		t.Fatal(err)
	}
	var label string
	for _, k := range []int{7, 99999} {
		if err := conn.QueryRow(ctx, "by_n", k).Scan(&label); err != nil || label != fmt.Sprintf("item %d", k) {
			t.Fatalf("prepared by_n(%d): %q %v", k, label, err)
		}
	}
	big := bytes.Repeat([]byte("pamd-bytea-"), 1<<20)[:10<<20]
	var got []byte
	if err := conn.QueryRow(ctx, "SELECT $1::bytea", big).Scan(&got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("10 MB bytea: %d bytes back, %v", len(got), err)
	}
	if _, err := conn.Exec(ctx, "LISTEN pamd_events"); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, "postgres://someone@"+c.addr()+"/orders?sslmode=verify-full&sslrootcert="+c.TLSCAFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "SELECT pg_notify('pamd_events', 'hello through pamd')"); err != nil {
		t.Fatal(err)
	}
	other.Close(ctx)
	nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
	note, err := conn.WaitForNotification(nctx)
	ncancel()
	if err != nil || note.Payload != "hello through pamd" {
		t.Fatalf("NOTIFY: %+v %v", note, err)
	}

	// psycopg2 (it sends a password; pamd never asks for it).
	{
		host, port, _ := net.SplitHostPort(tp.addr)
		py := fmt.Sprintf(`import psycopg2
c = psycopg2.connect(host=%q, port=%s, dbname="orders", user="whoever", password="ignored", sslmode="require")
cur = c.cursor()
cur.execute("SELECT label FROM items WHERE n = %%s", (12,))
print(cur.fetchone()[0])
`, host, port)
		out, err := exec.Command("/usr/bin/python3", "-c", py).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "item 12" {
			t.Fatalf("psycopg2: %s %v", out, err)
		}
	}

	// The query log: statements, outcomes, COPY, parameters.
	var recs []pgRecord
	e.waitFor("the query log", 15*time.Second, func() bool {
		recs = e.pgLogs(c.SessionID)
		return slices.ContainsFunc(recs, func(r pgRecord) bool { return strings.Contains(r.Command, "pg_notify") })
	})
	find := func(what string, pred func(pgRecord) bool) pgRecord {
		t.Helper()
		for _, r := range recs {
			if pred(r) {
				return r
			}
		}
		for _, r := range recs {
			t.Logf("%s %q %.200q %s %s", r.Type, r.Command, r.Data, r.Op, r.Error)
		}
		t.Fatalf("no %s in the query log", what)
		return pgRecord{}
	}
	if r := find("failed query", func(r pgRecord) bool { return r.Command == "SELECT * FROM nothing" }); *r.Status != 0 || !strings.HasPrefix(r.Error, "SQLSTATE 42P01: ") || r.Database != "orders" {
		t.Fatalf("failed query: %+v", r)
	}
	if r := find("INSERT", func(r pgRecord) bool { return strings.HasPrefix(r.Command, "INSERT INTO items ") }); r.Op != "INSERT 0 100000" || r.Rows != 100000 {
		t.Fatalf("INSERT: %+v", r)
	}
	if r := find("COPY out", func(r pgRecord) bool { return r.Type == "copy" && r.Path == "out" }); r.Rows != 100000 || r.Size < 1000000 {
		t.Fatalf("COPY out: %+v", r)
	}
	if r := find("COPY in", func(r pgRecord) bool { return r.Type == "copy" && r.Path == "in" }); r.Rows != 100000 || r.Size < 1000000 {
		t.Fatalf("COPY in: %+v", r)
	}
	if r := find("cancelled pg_sleep", func(r pgRecord) bool { return strings.Contains(r.Command, "pg_sleep(30)") }); !strings.HasPrefix(r.Error, "SQLSTATE 57014") {
		t.Fatalf("cancelled query: %+v", r)
	}
	if r := find("prepared statement", func(r pgRecord) bool { return r.Type == "execute" && r.Data == "$1 = 99999" /* sent as a binary int4 */ }); r.Command != "SELECT label FROM items WHERE n = $1" || r.Op != "SELECT 1" {
		t.Fatalf("prepared statement: %+v", r)
	}
	r := find("10 MB bytea", func(r pgRecord) bool { return r.Command == "SELECT $1::bytea" })
	if r.Truncated == nil || r.Truncated.Values != 1 || len(r.Data) > 130<<10 || !strings.HasPrefix(r.Data, `$1 = '\x70616d64`) {
		t.Fatalf("10 MB bytea log: truncated %+v, %d bytes of data", r.Truncated, len(r.Data))
	}
	text := e.ok("", "sessions", "logs", c.SessionID)
	if !strings.Contains(text, "[orders] INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100000) g  INSERT 0 100000") ||
		!strings.Contains(text, "copy out") || !strings.Contains(text, "error SQLSTATE 42P01") {
		t.Fatalf("sessions logs:\n%.3000s", text)
	}

	// The stored password reached no client, log, output or server log.
	tp.mu.Lock()
	received := tp.got.Bytes()
	tp.mu.Unlock()
	if bytes.Contains(received, []byte(pgAppPass)) {
		t.Fatal("the stored password reached the client")
	}
	logJSON := e.ok("", "sessions", "logs", c.SessionID, "-o", "json")
	audit := e.ok("", "audit", "list", "-o", "json")
	for name, s := range map[string]string{"log": logJSON, "audit": audit, "process output": e.allOutput(), "server log": p.serverLog(t)} {
		if strings.Contains(s, pgAppPass) {
			t.Fatalf("the stored password is in the %s", name)
		}
	}
	if !strings.Contains(p.serverLog(t), "SELECT pg_sleep(30)") {
		t.Fatal("the server's log does not log statements: the check above saw nothing")
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// TestPostgresPlainMD5Server: a server without TLS is refused while the
// resource wants TLS (fail closed) and served with --tls=false; it asks
// for MD5, which pamd answers. A stored password the server no longer
// takes, and a server gone, reach psql as pamd's errors.
func TestPostgresPlainMD5Server(t *testing.T) {
	t.Parallel()
	p := startPostgres(t, pgSetup{auth: "md5"})
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(p.addr)
	add := []string{"resources", "add", "--type", "postgres", "--name", "pg1", "--gateway", "gw1", "--host", host, "--port", port, "--database", "orders"}
	if errOut := e.fails("", add...); !strings.Contains(errOut, "refuses TLS") {
		t.Fatalf("a server without TLS: %s", errOut)
	}
	e.ok("", append(add, "--tls=false")...)
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	c := e.connectPostgres("pg1/app")
	if out, err := psql(t, c.addr(), "sslmode=verify-full sslrootcert="+c.TLSCAFile, "-c", "SELECT current_user"); err != nil || out != "app" {
		t.Fatalf("psql: %q %v", out, err)
	}
	if !strings.Contains(p.serverLog(t), `user=app database=orders`) || !strings.Contains(p.serverLog(t), "method=md5") {
		t.Fatalf("the server did not log an MD5 login of app:\n%s", lastLines(p.serverLog(t), 20))
	}

	// Rotation sends the MD5 hash the server stores, never the password.
	e.ok("", "accounts", "rotate", "pg1/app")
	if stored := p.rolpassword(t, "app"); !strings.HasPrefix(stored, "md5") || len(stored) != 35 {
		t.Fatalf("app's stored password after the rotation: %.6s… (%d)", stored, len(stored))
	}
	if out, err := psql(t, c.addr(), "sslmode=disable", "-c", "SELECT current_user"); err != nil || out != "app" {
		t.Fatalf("after the rotation: %q %v", out, err)
	}
	if !strings.Contains(p.serverLog(t), `ALTER ROLE "app" PASSWORD 'md5`) {
		t.Fatal("the server's log has no ALTER ROLE with an MD5 hash")
	}

	// The password changes behind pamd's back.
	p.admin(t, "ALTER ROLE app PASSWORD 'changed-behind-pamd'")
	out, err := psql(t, c.addr(), "sslmode=disable", "-c", "SELECT 1")
	if err == nil || !strings.Contains(out, "FATAL:  pamd: PostgreSQL refused the stored credentials of account app (SQLSTATE 28P01") {
		t.Fatalf("a refused stored password: %q %v", out, err)
	}
	// The gateway is gone: pamd connect itself answers, in PostgreSQL's terms.
	e.killGateway()
	out, err = psql(t, c.addr(), "sslmode=require", "-c", "SELECT 1")
	if err == nil || !strings.Contains(out, "FATAL:  pamd: ") {
		t.Fatalf("with the gateway gone: %q %v", out, err)
	}
	e.restartGateway()

	// The server is gone.
	exec.Command("runuser", "-u", pgSystemUser, "--", pgBin+"/pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop").Run()
	out, err = psql(t, c.addr(), "sslmode=require", "-c", "SELECT 1")
	if err == nil || !strings.Contains(out, "FATAL:  pamd: the gateway cannot reach "+p.addr) {
		t.Fatalf("an unreachable server: %q %v", out, err)
	}
	for name, s := range map[string]string{"process output": e.allOutput(), "server log": p.serverLog(t)} {
		if strings.Contains(s, pgAppPass) {
			t.Fatalf("the stored password is in the %s", name)
		}
	}
}

// TestPostgresExpiry: at the session's expiry a connection is cut within
// a second, and the client is told why.
func TestPostgresExpiry(t *testing.T) {
	// Not parallel: it asserts a 1 s window.
	p := startPostgres(t, pgSetup{tls: true})
	e := newEnv(t)
	e.addPostgres("pg1", p, "--tls-ca-file", p.caFile)
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	c := e.connectPostgres("pg1/app", "--duration", "3s")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://x@"+c.addr()+"/orders?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := conn.Exec(ctx, "SELECT pg_sleep(30)"); done <- err }()
	time.Sleep(time.Until(c.ExpiresAt))
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57P01" || !strings.HasPrefix(pe.Message, "pamd: the session") {
			t.Fatalf("at expiry the client got %v", err)
		}
	case <-time.After(time.Second + 200*time.Millisecond):
		t.Fatal("the connection was not cut within a second of the expiry")
	}

	// An administrator ends a session: the same, with the reason.
	c2 := e.connectPostgres("pg1/app")
	conn2, err := pgx.Connect(ctx, "postgres://x@"+c2.addr()+"/orders?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	go func() { _, err := conn2.Exec(ctx, "SELECT pg_sleep(30)"); done <- err }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	e.ok("", "sessions", "terminate", c2.SessionID)
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57P01" || !strings.HasPrefix(pe.Message, "pamd: the session ended") {
			t.Fatalf("at terminate the client got %v", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("cut %s after the terminate command began", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the connection was not cut after the terminate")
	}
}

// rolpassword is what the server stores as role's password.
func (p *pgServer) rolpassword(t *testing.T, role string) string {
	return p.admin(t, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+role+"'")
}

// directLogin says whether role logs in to the server itself with password.
func (p *pgServer) directLogin(role, password string) error {
	host, port, _ := net.SplitHostPort(p.addr)
	cmd := exec.Command("psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", role, "-d", "orders", "-c", "SELECT 1")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestRotationPostgres: ALTER ROLE as the role itself and through a
// rotation account with CREATEROLE, the password sent as a SCRAM verifier
// (the server's statement log never shows one in clear); open connections
// and live sessions go on; failures keep the old password; killed at each
// step, the rotation resumes.
func TestRotationPostgres(t *testing.T) {
	t.Parallel()
	p := startPostgres(t, pgSetup{tls: true})
	p.admin(t, "CREATE ROLE rotator LOGIN CREATEROLE PASSWORD 'Rotator-Pg-Pass-8k'")
	p.admin(t, "CREATE ROLE app2 LOGIN PASSWORD 'App2-Pg-Pass-3m'")
	e := newEnv(t)
	e.addPostgres("pg", p, "--tls-ca-file", p.caFile)
	e.ok(pgAppPass+"\n", "accounts", "add", "pg/app", "--username", "app", "--password-stdin")
	e.ok("Rotator-Pg-Pass-8k\n", "accounts", "add", "pg/rotator", "--username", "rotator", "--password-stdin")
	e.ok("App2-Pg-Pass-3m\n", "accounts", "add", "pg/app2", "--username", "app2", "--password-stdin")
	ctx := context.Background()

	c := e.connectPostgres("pg/app")
	held, err := pgx.Connect(ctx, "postgres://x@"+c.addr()+"/orders?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)
	before := p.rolpassword(t, "app")
	out := e.ok("", "accounts", "rotate", "pg/app")
	if !strings.Contains(out, "rotated pg/app") {
		t.Fatalf("rotate said: %s", out)
	}
	after := p.rolpassword(t, "app")
	if after == before || !strings.HasPrefix(after, "SCRAM-SHA-256$4096:") {
		t.Fatalf("app's stored password after the rotation: %.20s…", after)
	}
	if p.directLogin("app", pgAppPass) == nil {
		t.Fatal("the old password still logs in")
	}
	var n int
	if err := held.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatalf("the open connection after the rotation: %v", err)
	}
	if out, err := psql(t, c.addr(), "sslmode=disable", "-c", "SELECT current_user"); err != nil || out != "app" {
		t.Fatalf("a new connection of the live session: %q %v", out, err)
	}

	// Through the rotation account.
	e.ok("", "accounts", "set", "pg/app2", "--rotate-with", "pg/rotator")
	before2 := p.rolpassword(t, "app2")
	e.ok("", "accounts", "rotate", "pg/app2")
	if p.rolpassword(t, "app2") == before2 || p.directLogin("app2", "App2-Pg-Pass-3m") == nil {
		t.Fatal("app2's password did not change")
	}
	// The rotation account loses CREATEROLE: the rotation fails, app2 keeps
	// its password.
	p.admin(t, "ALTER ROLE rotator NOCREATEROLE")
	before2 = p.rolpassword(t, "app2")
	if errOut := e.fails("", "accounts", "rotate", "pg/app2"); !strings.Contains(errOut, "SQLSTATE 42501") || !strings.Contains(errOut, "keeps its old credential") {
		t.Fatalf("rotation account without CREATEROLE: %s", errOut)
	}
	if p.rolpassword(t, "app2") != before2 {
		t.Fatal("a failed rotation changed the password")
	}

	// Killed at each step, then resumed.
	for _, step := range []string{"sealed", "changed", "verified", "answered"} {
		prev := p.rolpassword(t, "app")
		e.killAt("pg/app", step)
		if p.rolpassword(t, "app") == prev {
			t.Fatalf("killed at %s: the resumed rotation did not change the password", step)
		}
		c := e.connectPostgres("pg/app")
		if out, err := psql(t, c.addr(), "sslmode=disable", "-c", "SELECT current_user"); err != nil || out != "app" {
			t.Fatalf("access after a kill at %s: %q %v", step, out, err)
		}
	}

	// The statement log shows each ALTER ROLE with a verifier only.
	alters := 0
	for _, line := range strings.Split(p.serverLog(t), "\n") {
		if i := strings.Index(line, "ALTER ROLE \""); i >= 0 {
			alters++
			if !strings.Contains(line[i:], "PASSWORD 'SCRAM-SHA-256$4096:") {
				t.Fatalf("the server logged a password change without a verifier: %s", line[i:])
			}
		}
	}
	if alters < 6 {
		t.Fatalf("%d ALTER ROLE statements in the server's log", alters)
	}
	if strings.Contains(e.allOutput(), pgAppPass) || strings.Contains(e.allOutput(), "SCRAM-SHA-256$") {
		t.Fatal("a password or verifier is in a process's output")
	}
}

// pgjdbcProgram is a JDBC client on PgJDBC (what DBeaver and DataGrip
// use): it connects with the URL given, no password, and runs a query and
// a prepared statement.
const pgjdbcProgram = `import java.sql.*;

public class PgClient {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], "anyone", "")) {
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT current_user || '@' || current_database()")) {
                r.next();
                System.out.println(r.getString(1));
            }
            try (PreparedStatement p = c.prepareStatement("SELECT ?::int * 2")) {
                p.setInt(1, 21);
                try (ResultSet r = p.executeQuery()) {
                    r.next();
                    System.out.println(r.getInt(1));
                }
            }
        }
    }
}
`

// nodePGProgram is a node-postgres client: the connection settings come
// as JSON (ssl with the CA file to verify against, when given).
const nodePGProgram = `const { Client } = require(process.argv[2]);
const fs = require('fs');
const cfg = JSON.parse(process.argv[3]);
if (cfg.ca) { cfg.ssl = { ca: fs.readFileSync(cfg.ca) }; delete cfg.ca; }
const c = new Client(cfg);
(async () => {
  await c.connect();
  const r = await c.query('SELECT current_user AS who, $1::text AS said', ['hello from node-postgres']);
  console.log(r.rows[0].who + ' ' + r.rows[0].said);
  await c.end();
})().catch(e => { console.error(e.message); process.exit(1); });
`

// TestPostgresJDBCAndNodeThroughConnect: PgJDBC with the JDBC URL pamd
// connect prints (and with verify-full against pamd's CA), and
// node-postgres in the clear and with TLS verified.
func TestPostgresJDBCAndNodeThroughConnect(t *testing.T) {
	t.Parallel()
	jar := lookPeer(t, "PgJDBC (libpostgresql-jdbc-java)", "/usr/share/java/postgresql.jar")
	javac := lookPeer(t, "javac", "")
	java := lookPeer(t, "java", "")
	nodePG := lookPeer(t, "node-postgres (pg from npm)", filepath.Join(repoRoot(), ".cache", "peers", "node_modules", "pg"))
	node := lookPeer(t, "node", "")
	p := startPostgres(t, pgSetup{tls: true})
	e := newEnv(t)
	e.addPostgres("pg1", p, "--tls-ca-file", p.caFile)
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	c := e.connectPostgres("pg1/app")

	dir := t.TempDir()
	src := filepath.Join(dir, "PgClient.java")
	os.WriteFile(src, []byte(pgjdbcProgram), 0o600)
	if out, err := exec.Command(javac, "--release", "17", "-d", dir, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	for _, url := range []string{c.JDBCURL, strings.Replace(c.JDBCURL, "sslmode=disable", "sslmode=verify-full&sslrootcert="+c.TLSCAFile, 1)} {
		out, err := exec.Command(java, "-cp", dir+":"+jar, "PgClient", url).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "app@orders\n42" {
			t.Fatalf("PgJDBC with %s: %v\n%s", url, err, out)
		}
	}
	script := filepath.Join(dir, "client.js")
	os.WriteFile(script, []byte(nodePGProgram), 0o600)
	for _, cfg := range []map[string]any{
		{"host": c.Host, "port": c.Port, "database": "orders", "user": "anyone", "password": "sent anyway"},
		{"host": c.Host, "port": c.Port, "database": "orders", "user": "anyone", "ca": c.TLSCAFile},
	} {
		js, _ := json.Marshal(cfg)
		out, err := exec.Command(node, script, nodePG, string(js)).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "app hello from node-postgres" {
			t.Fatalf("node-postgres with %s: %v\n%s", js, err, out)
		}
	}
	var recs []pgRecord
	e.waitFor("the clients in the query log", 10*time.Second, func() bool {
		recs = e.pgLogs(c.SessionID)
		return slices.ContainsFunc(recs, func(r pgRecord) bool { return r.Data == "$1 = 'hello from node-postgres'" }) &&
			slices.ContainsFunc(recs, func(r pgRecord) bool { return strings.HasPrefix(r.Command, "SELECT $1::int * 2") })
	})
	if strings.Contains(e.allOutput()+p.serverLog(t), pgAppPass) {
		t.Fatal("the stored password is in a process's output or the server's log")
	}
}

// TestPostgresCleartextServer: a server that asks for the password in
// clear text gets it inside verified TLS, and never without TLS.
func TestPostgresCleartextServer(t *testing.T) {
	t.Parallel()
	p := startPostgres(t, pgSetup{auth: "password", tls: true})
	e := newEnv(t)
	e.addPostgres("pg1", p, "--tls-ca-file", p.caFile)
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	c := e.connectPostgres("pg1/app")
	if out, err := psql(t, c.addr(), "sslmode=disable", "-c", "SELECT current_user"); err != nil || out != "app" {
		t.Fatalf("psql: %q %v", out, err)
	}
	e.addPostgres("pg2", p, "--tls=false")
	if errOut := e.fails(pgAppPass+"\n", "accounts", "add", "pg2/app", "--username", "app", "--password-stdin"); !strings.Contains(errOut, "clear text on a connection without TLS") {
		t.Fatalf("clear text without TLS: %s", errOut)
	}
	if strings.Contains(e.allOutput()+p.serverLog(t), pgAppPass) {
		t.Fatal("the stored password is in a process's output or the server's log")
	}
}
