package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tds"
)

// TestBenchMSSQL reads a 100,000-row result and runs SELECT 1 round trips
// straight to the SQL Server stand-in and through pamd, in the same run.
func TestBenchMSSQL(t *testing.T) {
	benchEnabled(t)
	s, _ := standin(t, tds.EncryptNotSup)
	e := newEnv(t)
	e.addMSSQL("sql1", s, "--tls=false")
	e.ok(sqlPassword+"\n", "accounts", "add", "sql1/app", "--username", "app", "--password-stdin")
	c := e.connectMSSQL("sql1/app")
	ctx := context.Background()
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("app", sqlPassword), Host: s.Addr, RawQuery: "encrypt=disable&database=orders"}
	direct, err := sql.Open("sqlserver", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	through := sqlDB(t, c.addr(), url.Values{})
	n := 100000
	work := func(label string, q func() (int, error)) time.Duration {
		start := time.Now()
		got, err := q()
		if err != nil || got != n {
			t.Fatalf("%s: read %d rows: %v", label, got, err)
		}
		return time.Since(start)
	}
	rowsOf := func(db *sql.DB) func() (int, error) {
		return func() (int, error) {
			rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT TOP (%d) n, label FROM numbers", n))
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			var k int
			var label string
			got := 0
			for rows.Next() {
				if err := rows.Scan(&k, &label); err != nil {
					return got, err
				}
				got++
			}
			return got, rows.Err()
		}
	}
	work("warm", rowsOf(direct))
	work("warm", rowsOf(through))
	dDirect := min(work("direct", rowsOf(direct)), work("direct", rowsOf(direct)), work("direct", rowsOf(direct)))
	dPamd := min(work("pamd", rowsOf(through)), work("pamd", rowsOf(through)), work("pamd", rowsOf(through)))
	ratio := dDirect.Seconds() / dPamd.Seconds()
	report(t, "mssql rows", fmt.Sprintf("read %d rows (int, nvarchar): direct %s, through pamd %s; ratio %.2f (target >= 0.70)",
		n, dDirect.Round(time.Millisecond), dPamd.Round(time.Millisecond), ratio))
	if ratio < 0.7 {
		guard(t, "mssql rows ratio %.2f below 0.70", ratio)
	}
	ping := func(db *sql.DB) []time.Duration {
		var v int
		return roundTrips(t, func() error { return db.QueryRowContext(ctx, "SELECT 1").Scan(&v) })
	}
	pd, pp := ping(direct), ping(through)
	report(t, "mssql SELECT 1", fmt.Sprintf("SELECT 1 x1000: direct p50 %s p99 %s; through pamd p50 %s p99 %s; p50 ratio %.1f",
		us(pct(pd, .5)), us(pct(pd, .99)), us(pct(pp, .5)), us(pct(pp, .99)), float64(pct(pp, .5))/float64(pct(pd, .5))))
}
