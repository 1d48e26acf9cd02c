package postgreskind

import (
	"strings"
	"testing"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// TestSummary: queries, executes with parameters, COPY and failures as one
// line each; records every kind has rendered alike.
func TestSummary(t *testing.T) {
	ok, failed := 1, 0
	for _, c := range []struct {
		r    tunnel.Record
		want string
	}{
		{tunnel.Record{Type: "query", Status: &ok, Database: "app", Command: "SELECT\n  n\tFROM t", Op: "SELECT 3", Rows: 3, DurationMS: 1.25}, "[app] SELECT n FROM t  SELECT 3  1.2 ms"},
		{tunnel.Record{Type: "execute", Status: &ok, Database: "app", Command: "SELECT $1", Data: "$1 = '7'", Op: "SELECT 1"}, "[app] SELECT $1  ($1 = '7')  SELECT 1  0.0 ms"},
		{tunnel.Record{Type: "copy", Status: &ok, Database: "app", Command: "COPY t TO STDOUT", Path: "out", Size: 1200, Op: "COPY 100"}, "[app] COPY t TO STDOUT  copy out 1200 bytes, COPY 100  0.0 ms"},
		{tunnel.Record{Type: "query", Status: &failed, Database: "app", Command: "SELECT * FROM nothing", Error: "SQLSTATE 42P01: relation \"nothing\" does not exist"}, "[app] SELECT * FROM nothing  error SQLSTATE 42P01: relation \"nothing\" does not exist  0.0 ms"},
		{tunnel.Record{Type: "query", Status: &ok, Database: "app", Command: "", Op: ""}, "[app]   ok  0.0 ms"},
		{tunnel.Record{Type: "error", Data: "pamd: refused"}, "error: pamd: refused"},
	} {
		if got := (&Kind{}).Summary(&c.r); got != c.want {
			t.Errorf("%s record: %q, want %q", c.r.Type, got, c.want)
		}
	}
}

// TestOptions: the database is required; TLS is on and verified unless
// turned off, with a warning.
func TestOptions(t *testing.T) {
	if _, err := parse(map[string]string{}); err == nil || !strings.Contains(err.Error(), "--database") {
		t.Fatalf("no database: %v", err)
	}
	o := map[string]string{"database": " app "}
	if w, err := parse(o); err != nil || len(w) != 0 || o["database"] != "app" || o["tls"] != "true" || o["tls_reject_unauthorized"] != "true" {
		t.Fatalf("defaults: %v %v %v", o, w, err)
	}
	if w, err := parse(map[string]string{"database": "app", "tls": "false"}); err != nil || len(w) != 1 {
		t.Fatalf("TLS off: %v %v", w, err)
	}
	if _, err := parse(map[string]string{"database": "app", "tls": "maybe"}); err == nil {
		t.Fatal("tls=maybe accepted")
	}
}

// fakeEnv gives the kind a resource CA; the grant needs nothing else.
type fakeEnv struct{ kind.Env }

func (fakeEnv) ResourceCA() string { return "CA PEM" }

// TestGrantLines: the psql lines name the database (quoted when needed),
// both sslmodes, a JDBC URL, and say the password stays empty.
func TestGrantLines(t *testing.T) {
	if conninfoValue("my db") != `'my db'` || conninfoValue("app") != "app" || conninfoValue(`it's`) != `'it\'s'` {
		t.Fatal("conninfo quoting")
	}
	k := &Kind{env: fakeEnv{}}
	var g api.SessionGrant
	if err := k.Grant(&store.Resource{Options: map[string]string{"database": "orders"}}, nil, &g); err != nil {
		t.Fatal(err)
	}
	lines := strings.Join(g.ClientLines, "\n")
	for _, want := range []string{
		`psql "host=127.0.0.1 port={port} dbname=orders user=pamd sslmode=disable"`,
		`sslmode=verify-full sslrootcert={tls_ca_file}"`,
		"jdbc:postgresql://127.0.0.1:{port}/orders",
		"leave the password empty",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("no %q in:\n%s", want, lines)
		}
	}
	if g.TLSCA != "CA PEM" || g.Refusal != api.RefusalPostgres {
		t.Fatalf("grant: %+v", g)
	}
}
