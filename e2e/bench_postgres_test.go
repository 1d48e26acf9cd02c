package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestBenchPostgres runs pgbench's select-only load (8 clients) and a
// COPY of 1,000,000 rows out and in, straight to PostgreSQL 15 and
// through pamd, in the same run. Both paths reach the server without
// TLS, so the ratio is pamd's own cost.
func TestBenchPostgres(t *testing.T) {
	benchEnabled(t)
	if _, err := exec.LookPath("pgbench"); err != nil {
		needPeers(t, "pgbench (postgresql-contrib)", false)
	}
	p := startPostgres(t, pgSetup{})
	e := newEnv(t)
	e.addPostgres("pg1", p, "--tls=false")
	e.ok(pgAppPass+"\n", "accounts", "add", "pg1/app", "--username", "app", "--password-stdin")
	c := e.connectPostgres("pg1/app")
	host, port, _ := net.SplitHostPort(p.addr)
	// The same server as a tcp resource: the tunnel's own cost, the floor.
	e.ok("", "resources", "add", "--type", "tcp", "--name", "pgtcp", "--gateway", "gw1", "--host", host, "--port", port)
	e.ok("x\n", "accounts", "add", "pgtcp/raw", "--username", "raw", "--password-stdin")
	ct := e.connect("pgtcp/raw")
	raw := fmt.Sprintf("host=%s port=%d dbname=orders user=app password=%s sslmode=disable", ct.Host, ct.Port, pgAppPass)
	direct := fmt.Sprintf("host=%s port=%s dbname=orders user=app password=%s sslmode=disable", host, port, pgAppPass)
	// What a user would pick instead: ssh -L through an OpenSSH sshd.
	fw := sshForward(t, p.addr)
	fwHost, fwPort, _ := net.SplitHostPort(fw.locals[0])
	viaSSH := fmt.Sprintf("host=%s port=%s dbname=orders user=app password=%s sslmode=disable", fwHost, fwPort, pgAppPass)
	through := fmt.Sprintf("host=%s port=%d dbname=orders user=app sslmode=disable", c.Host, c.Port)
	if out, err := exec.Command("pgbench", "-i", "-q", "-s", "2", direct).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}

	seconds := 30
	if quick() {
		seconds = 4
	}
	bench := func(label, conninfo string) (float64, time.Duration, int) {
		dir := t.TempDir()
		cmd := exec.Command("pgbench", "-S", "-n", "-c", "8", "-j", "2", "-T", strconv.Itoa(seconds), "-l", "--sampling-rate=0.2", "--log-prefix="+filepath.Join(dir, "tx"), conninfo)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %s: %v\n%s", label, err, out)
		}
		m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("pgbench %s: no tps in\n%s", label, out)
		}
		tps, _ := strconv.ParseFloat(string(m[1]), 64)
		n := regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`).FindSubmatch(out)
		if n == nil {
			t.Fatalf("pgbench %s: no transaction count in\n%s", label, out)
		}
		count, _ := strconv.Atoi(string(n[1]))
		return tps, pgbenchP50(t, dir), count
	}
	load := loadAverage()
	dTPS, dP50, _ := bench("direct", direct)
	pTPS, pP50, pCount := bench("through pamd", through)
	tTPS, tP50, _ := bench("through a tcp resource", raw)
	sTPS, sP50, _ := bench("through ssh -L", viaSSH)
	ratio := pTPS / dTPS
	report(t, "postgres pgbench -S", fmt.Sprintf("8 clients, %d s: direct %.0f tps (p50 %s), through pamd %.0f tps (p50 %s); ratio %.2f (target >= 0.60); as a pamd tcp resource %.0f tps (p50 %s); through ssh -L %.0f tps (p50 %s), ratio %.2f; load average before %s, after %s",
		seconds, dTPS, us(dP50), pTPS, us(pP50), ratio, tTPS, us(tP50), sTPS, us(sP50), sTPS/dTPS, load, loadAverage()))
	if ratio < 0.6 {
		guard(t, "postgres pgbench ratio %.2f below 0.60", ratio)
	}
	// The query log has every statement pgbench ran through pamd. (Checked
	// in quick mode: the full run's log is past the 64 MiB answer the CLI
	// reads.)
	if quick() {
		e.waitFor("pgbench's statements in the query log", 60*time.Second, func() bool {
			ok := 0
			for _, r := range e.pgLogs(c.SessionID) {
				if strings.HasPrefix(r.Command, "SELECT abalance FROM pgbench_accounts WHERE aid = ") && r.Op == "SELECT 1" && r.Status != nil && *r.Status == 1 {
					ok++
				}
			}
			return ok >= pCount
		})
	}

	// COPY of 1,000,000 rows out (to nothing) and back in.
	ctx := context.Background()
	rows := 1000000
	if quick() {
		rows = 200000
	}
	connect := func(conninfo string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, conninfo)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}
	dc, pc, tc := connect(direct), connect(through), connect(raw)
	if _, err := dc.Exec(ctx, fmt.Sprintf("CREATE TABLE bench_rows AS SELECT g AS n, 'row label ' || g AS label FROM generate_series(1, %d) g; CREATE UNLOGGED TABLE bench_in (n int, label text)", rows)); err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if _, err := dc.PgConn().CopyTo(ctx, &data, "COPY bench_rows TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	copyOut := func(conn *pgx.Conn) time.Duration {
		start := time.Now()
		tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY bench_rows TO STDOUT")
		if err != nil || tag.RowsAffected() != int64(rows) {
			t.Fatalf("COPY out: %v %v", tag, err)
		}
		return time.Since(start)
	}
	copyIn := func(conn *pgx.Conn) time.Duration {
		if _, err := conn.Exec(ctx, "TRUNCATE bench_in"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(data.Bytes()), "COPY bench_in FROM STDIN")
		if err != nil || tag.RowsAffected() != int64(rows) {
			t.Fatalf("COPY in: %v %v", tag, err)
		}
		return time.Since(start)
	}
	for _, w := range []struct {
		name string
		run  func(*pgx.Conn) time.Duration
	}{{"out", copyOut}, {"in", copyIn}} {
		w.run(dc)
		w.run(pc)
		dd := min(w.run(dc), w.run(dc), w.run(dc))
		pd := min(w.run(pc), w.run(pc), w.run(pc))
		td := min(w.run(tc), w.run(tc), w.run(tc))
		ratio := dd.Seconds() / pd.Seconds()
		report(t, "postgres COPY "+w.name, fmt.Sprintf("%d rows (%.1f MB): direct %s, through pamd %s; ratio %.2f (target >= 0.80); as a pamd tcp resource %s; load average %s",
			rows, float64(data.Len())/1e6, dd.Round(time.Millisecond), pd.Round(time.Millisecond), ratio, td.Round(time.Millisecond), loadAverage()))
		if ratio < 0.8 {
			guard(t, "postgres COPY %s ratio %.2f below 0.80", w.name, ratio)
		}
	}
}

// pgbenchP50 is the median latency of the transactions pgbench logged
// (-l: the third field is the latency in microseconds).
func pgbenchP50(t *testing.T, dir string) time.Duration {
	files, _ := filepath.Glob(filepath.Join(dir, "tx*"))
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(fh)
		for s.Scan() {
			if fields := strings.Fields(s.Text()); len(fields) > 2 {
				if v, err := strconv.Atoi(fields[2]); err == nil {
					lat = append(lat, time.Duration(v)*time.Microsecond)
				}
			}
		}
		fh.Close()
	}
	if len(lat) == 0 {
		t.Fatal("pgbench logged no transactions")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)/2]
}

// loadAverage is the machine's load over 1, 5 and 15 minutes: the
// benchmarks share it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
