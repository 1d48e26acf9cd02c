package postgresproxy

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/tunnel"
)

// rawLogger returns a logger and the records it gave the recorder, as
// they are (batches not taken apart).
func rawLogger() (*logger, func() []tunnel.Record) {
	var mu sync.Mutex
	var recs []tunnel.Record
	l := &logger{d: &tunnel.Descriptor{SessionID: "s1", ConnectionID: "c1"}, database: "orders", rec: func(r tunnel.Record) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}}
	return l, func() []tunnel.Record {
		mu.Lock()
		defer mu.Unlock()
		return append([]tunnel.Record(nil), recs...)
	}
}

func queries(t testing.TB, texts ...string) (client, server []byte) {
	for _, q := range texts {
		client = append(client, encode(t, &pgproto3.Query{String: q})...)
		server = append(server, encode(t, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})...)
	}
	return client, server
}

// TestLogBatches: statements finishing together are recorded as few
// batch records, each under its bounds, holding every statement in
// order with its outcome; a statement too long for a batch goes alone, in
// its place; a lone statement is a record of its own.
func TestLogBatches(t *testing.T) {
	l, got := rawLogger()
	var texts []string
	for i := range 3000 {
		texts = append(texts, fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", i))
		if i == 1500 {
			texts = append(texts, "SELECT '"+strings.Repeat("z", 20<<10)+"'")
		}
	}
	client, server := queries(t, texts...)
	feed(t, l, client, server)
	recs := got()
	var all []tunnel.Record
	batches := 0
	for _, r := range recs {
		if r.Type == tunnel.RecordBatch {
			batches++
			if len(r.Data) > batchMax || r.SessionID != "s1" || r.ConnectionID != "c1" || r.Database != "orders" || r.Time.IsZero() {
				t.Fatalf("batch: %d bytes, %+v", len(r.Data), r)
			}
		}
		all = append(all, unbatch(r)...)
	}
	if len(all) != len(texts) {
		t.Fatalf("%d statements in %d records, want %d", len(all), len(recs), len(texts))
	}
	for i, r := range all {
		if r.Type != "query" || r.Command != texts[i] || r.Op != "SELECT 1" || r.Status == nil || *r.Status != 1 || r.Time.IsZero() || r.Database != "orders" {
			t.Fatalf("statement %d: %+v", i, r)
		}
	}
	if batches > len(texts)/100 || len(recs) > batches+1 {
		t.Fatalf("%d records (%d batches) for %d statements", len(recs), batches, len(texts))
	}

	l, got = rawLogger()
	client, server = queries(t, "SELECT 1")
	feed(t, l, client, server)
	if recs := got(); len(recs) != 1 || recs[0].Type != "query" || recs[0].Command != "SELECT 1" {
		t.Fatalf("a lone statement: %+v", recs)
	}
}

// TestLogBatchWindow: a batch is recorded batchWindow after its first
// statement without anything else happening; after the connection's end
// nothing more is.
func TestLogBatchWindow(t *testing.T) {
	l, got := rawLogger()
	client, server := queries(t, "SELECT 1", "SELECT 2")
	up, down := l.upstreamSeer(), l.downstreamSeer()
	see := func(s seer, b []byte) {
		for len(b) > 0 {
			typ, total, _ := pgHeader(b)
			s.see(typ, b[5:total], total)
			b = b[total:]
		}
	}
	see(up, client)
	see(down, server)
	if n := len(got()); n != 0 {
		t.Fatalf("%d records before the window passed", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if recs := got(); len(recs) != 1 || recs[0].Type != tunnel.RecordBatch || len(unbatch(recs[0])) != 2 {
		t.Fatalf("after the window: %+v", recs)
	}
	see(up, client[:len(client)/2])
	see(down, server[:len(server)/2])
	l.flush()
	time.Sleep(batchWindow + 50*time.Millisecond)
	if recs := got(); len(recs) != 2 || recs[1].Type != "query" {
		t.Fatalf("at the end: %+v", recs)
	}
}

func pgHeader(b []byte) (byte, int, error) {
	n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
	return b[0], n + 1, nil
}

// BenchmarkLogQuery is the handler's cost per simple query and its
// reply, both ways, with the log going to a recorder that keeps nothing.
func BenchmarkLogQuery(b *testing.B) {
	l := &logger{d: &tunnel.Descriptor{SessionID: "s1", ConnectionID: "c1"}, database: "orders", rec: func(tunnel.Record) {}}
	client := encode(b, &pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 123456;"})
	server := encode(b, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("abalance"), DataTypeOID: 23, DataTypeSize: 4, Format: 0}}},
		&pgproto3.DataRow{Values: [][]byte{[]byte("0")}}, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, &pgproto3.ReadyForQuery{TxStatus: 'I'})
	up, down := l.upstreamSeer(), l.downstreamSeer()
	see := func(s seer, p []byte) {
		for len(p) > 0 {
			typ, total, _ := pgHeader(p)
			if s.wantWhole(typ) {
				s.see(typ, p[5:total], total)
			} else {
				s.see(typ, nil, total)
			}
			p = p[total:]
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		see(up, client)
		see(down, server)
	}
	l.flush()
}

// FuzzAppendEntry: a statement's entry is valid JSON that reads back, as
// a tunnel.Record, to what encoding/json would have given.
func FuzzAppendEntry(f *testing.F) {
	f.Add("SELECT 1", "$1 = 'a'", "SELECT 1", "", int64(3), 1.25, true)
	f.Add("\x00\"\\\n\t\r\u2028\u2029<>&\xff\xe2\x80", "é€😀", "", "SQLSTATE 1: \x7f", int64(-1), 0.001, false)
	f.Fuzz(func(t *testing.T, command, data, op, errText string, n int64, ms float64, cut bool) {
		ok := int(n % 3)
		r := tunnel.Record{Time: time.Unix(n%4e9, n%1e9).UTC(), Type: "execute", Command: command, Data: data, Op: op, Error: errText,
			Status: &ok, Rows: n, Size: -n, DurationMS: ms}
		if cut {
			r.Truncated = &tunnel.Cut{Field: command, Length: n, SHA256: data, Values: 2}
		}
		b, err := appendEntry(nil, &r)
		if err != nil {
			if math.IsNaN(ms) || math.IsInf(ms, 0) {
				return
			}
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("not JSON: %q", b)
		}
		var got, want tunnel.Record
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v: %q", err, b)
		}
		std, _ := json.Marshal(r)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %+v, want %+v (%q)", got, want, b)
		}
	})
}
