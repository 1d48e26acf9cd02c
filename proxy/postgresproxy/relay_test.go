package postgresproxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/tunnel"
)

func encode(t testing.TB, msgs ...interface{ Encode([]byte) ([]byte, error) }) []byte {
	var out []byte
	for _, m := range msgs {
		var err error
		if out, err = m.Encode(out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// feed pumps client messages, then server messages, through a logger,
// each read getting one byte when slow is set.
func feed(t testing.TB, l *logger, client, server []byte, slow ...bool) (up, down []byte) {
	var u, d bytes.Buffer
	reader := func(b []byte) io.Reader {
		if len(slow) > 0 {
			return iotest.OneByteReader(bytes.NewReader(b))
		}
		return bytes.NewReader(b)
	}
	if err := pump(bufio.NewReaderSize(reader(client), 64<<10), &u, l.upstreamSeer()); err != io.EOF {
		t.Fatalf("upstream: %v", err)
	}
	if err := pump(bufio.NewReaderSize(reader(server), 64<<10), &d, l.downstreamSeer()); err != io.EOF {
		t.Fatalf("downstream: %v", err)
	}
	l.mu.Lock()
	l.flushBatch()
	l.mu.Unlock()
	return u.Bytes(), d.Bytes()
}

// newTestLogger returns a logger and the records it made, each statement
// of a batch as its own record.
func newTestLogger() (*logger, *[]tunnel.Record) {
	var recs []tunnel.Record
	return &logger{d: &tunnel.Descriptor{SessionID: "s1"}, database: "orders", rec: func(r tunnel.Record) { recs = append(recs, unbatch(r)...) }}, &recs
}

// unbatch is r, or the statements of a batch, as the server reads them.
func unbatch(r tunnel.Record) []tunnel.Record {
	out, err := tunnel.Unbatch(r)
	if err != nil {
		panic(err)
	}
	return out
}

// TestLogPipeline: (both with whole reads and one byte at a time) a simple query with two statements, then an extended
// pipeline whose second Execute fails and whose third is skipped, then a
// COPY in: each logged once with its outcome, and every byte passed on.
func TestLogPipeline(t *testing.T) {
	for _, slow := range []bool{false, true} {
		testLogPipeline(t, slow)
	}
}

func testLogPipeline(t *testing.T, slow bool) {
	l, recs := newTestLogger()
	big := strings.Repeat("x", 200<<10)
	client := encode(t,
		&pgproto3.Query{String: "SELECT 1; UPDATE t SET a = 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::text"},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("a")}},
		&pgproto3.Execute{},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte(big), nil}, ParameterFormatCodes: []int16{0}},
		&pgproto3.Execute{},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{{1, 2}}, ParameterFormatCodes: []int16{1}},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "COPY t FROM STDIN"},
		&pgproto3.CopyData{Data: []byte("1\n2\n")},
		&pgproto3.CopyDone{},
	)
	server := encode(t,
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.CommandComplete{CommandTag: []byte("UPDATE 3")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
		&pgproto3.ParseComplete{}, &pgproto3.BindComplete{},
		&pgproto3.DataRow{Values: [][]byte{[]byte("a")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ErrorResponse{Severity: "ERROR", Code: "22001", Message: "value too long"},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
		&pgproto3.CopyInResponse{},
		&pgproto3.CommandComplete{CommandTag: []byte("COPY 2")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	var up, down []byte
	if slow {
		up, down = feed(t, l, client, server, true)
	} else {
		up, down = feed(t, l, client, server)
	}
	if !bytes.Equal(up, client) || !bytes.Equal(down, server) {
		t.Fatal("the relay changed bytes")
	}
	want := []struct{ typ, command, op, err string }{
		{"query", "SELECT 1; UPDATE t SET a = 1", "SELECT 1; UPDATE 3", ""},
		{"execute", "SELECT $1::text", "SELECT 1", ""},
		{"execute", "SELECT $1::text", "", "SQLSTATE 22001: value too long"},
		{"execute", "SELECT $1::text", "", "not run: an earlier message before Sync failed"},
		{"copy", "COPY t FROM STDIN", "COPY 2", ""},
	}
	if len(*recs) != len(want) {
		t.Fatalf("%d records: %+v", len(*recs), *recs)
	}
	for i, w := range want {
		r := (*recs)[i]
		if r.Type != w.typ || r.Command != w.command || r.Op != w.op || r.Error != w.err || r.SessionID != "s1" || r.Database != "orders" {
			t.Errorf("record %d: %+v, want %+v", i, r, w)
		}
	}
	r := *recs
	if r[0].Rows != 4 || r[1].Data != "$1 = 'a'" || r[4].Path != "in" || r[4].Size != 4 || r[4].Rows != 2 {
		t.Fatalf("counts: rows %d, data %.40q, copy %s %d bytes %d rows", r[0].Rows, r[1].Data, r[4].Path, r[4].Size, r[4].Rows)
	}
	if r[2].Truncated == nil || r[2].Truncated.Values != 1 || !strings.HasSuffix(r[2].Data, "xxx', $2 = NULL") {
		t.Fatalf("long parameter: %+v %.80q", r[2].Truncated, r[2].Data)
	}
	if r[3].Data != `$1 = '\x0102'` {
		t.Fatalf("binary parameter: %q", r[3].Data)
	}
}

// TestLogLongQuery: a Query longer than wholeMax streams through and is
// logged by its length and hash alone.
func TestLogLongQuery(t *testing.T) {
	l, recs := newTestLogger()
	client := encode(t, &pgproto3.Query{String: "SELECT '" + strings.Repeat("y", wholeMax) + "'"})
	server := encode(t, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	up, _ := feed(t, l, client, server)
	if !bytes.Equal(up, client) {
		t.Fatal("the long query changed")
	}
	if len(*recs) != 1 {
		t.Fatalf("records: %d", len(*recs))
	}
	r := (*recs)[0]
	if r.Truncated == nil || !r.Truncated.Unread || r.Truncated.Length != int64(len(client)-5) || len(r.Truncated.SHA256) != 64 || r.Op != "SELECT 1" {
		t.Fatalf("long query record: %+v %+v", r, r.Truncated)
	}
}

// FuzzRelay: any bytes from either side pass whole or fail cleanly, and
// the log never panics.
func FuzzRelay(f *testing.F) {
	f.Add(encode(f, &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Parse{Query: "x"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}),
		encode(f, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ErrorResponse{Code: "1"}, &pgproto3.ReadyForQuery{TxStatus: 'I'}))
	f.Add([]byte{'B', 0, 0, 0, 8, 0, 0, 0xff, 0xff}, []byte{'C', 0, 0, 0, 4, 'Z', 0, 0, 0, 5, 'I'})
	f.Fuzz(func(t *testing.T, client, server []byte) {
		l, _ := newTestLogger()
		var u, d bytes.Buffer
		errU := pump(bufio.NewReaderSize(bytes.NewReader(client), 4096), &u, l.upstreamSeer())
		errD := pump(bufio.NewReaderSize(bytes.NewReader(server), 4096), &d, l.downstreamSeer())
		l.flush()
		if errU == io.EOF && !bytes.Equal(u.Bytes(), client) || errD == io.EOF && !bytes.Equal(d.Bytes(), server) {
			t.Fatal("bytes changed")
		}
	})
}

// TestLogParamTypes: binary parameters show as their values when Parse
// named their types or the server described them; others in hex.
func TestLogParamTypes(t *testing.T) {
	l, recs := newTestLogger()
	client := encode(t,
		&pgproto3.Parse{Name: "a", Query: "SELECT $1, $2", ParameterOIDs: []uint32{oidInt4, oidBool}},
		&pgproto3.Parse{Name: "b", Query: "SELECT $1, $2, $3"},
		&pgproto3.Describe{ObjectType: 'S', Name: "b"},
		&pgproto3.Sync{},
	)
	server := encode(t,
		&pgproto3.ParseComplete{}, &pgproto3.ParseComplete{},
		&pgproto3.ParameterDescription{ParameterOIDs: []uint32{oidInt8, oidUUID, 9999}}, &pgproto3.NoData{},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	feed(t, l, client, server) // the client binds once it has the description
	client = encode(t,
		&pgproto3.Bind{PreparedStatement: "a", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0xff, 0xff, 0xff, 0xfe}, {1}}},
		&pgproto3.Execute{},
		&pgproto3.Bind{PreparedStatement: "b", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 0, 0, 0, 0, 9}, {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}, {7}}},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	)
	server = encode(t,
		&pgproto3.BindComplete{}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.BindComplete{}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	feed(t, l, client, server)
	if len(*recs) != 2 {
		t.Fatalf("%d records", len(*recs))
	}
	if got := (*recs)[0].Data; got != "$1 = -2, $2 = true" {
		t.Errorf("types from Parse: %q", got)
	}
	if got := (*recs)[1].Data; got != `$1 = 9, $2 = '12345678-9abc-def0-1234-56789abcdef0', $3 = '\x07'` {
		t.Errorf("types from the description: %q", got)
	}
}
