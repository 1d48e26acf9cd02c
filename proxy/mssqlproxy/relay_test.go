package mssqlproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// logged passes one client message, split into packets of size bytes,
// through the query log and returns its record.
func logged(t *testing.T, typ byte, payload []byte, size int) tunnel.Record {
	t.Helper()
	var got []tunnel.Record
	l := &logger{d: &tunnel.Descriptor{SessionID: "s1"}, rec: func(r tunnel.Record) { got = append(got, r) }}
	pending := make(chan request, 1)
	see := l.upstream(pending)
	for i := 0; i < len(payload); i += size {
		status := byte(0)
		if i+size >= len(payload) {
			status = tds.StatusEOM
		}
		see(typ, status, payload[i:min(i+size, len(payload))])
	}
	l.done(<-pending, tds.Outcome{})
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	if js, _ := json.Marshal(got[0]); len(js) > tunnel.MaxRecordBody {
		t.Fatalf("record of %d bytes", len(js))
	}
	return got[0]
}

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestPaddedBatchKeepsItsTail: a batch padded far past the log's bound
// keeps its start and the statement at its end, with the whole's length
// and hash, whatever the packet boundaries (odd ones split code units and
// surrogate pairs).
func TestPaddedBatchKeepsItsTail(t *testing.T) {
	text := "SELECT 1 /*" + strings.Repeat("padding ", 300<<10) + "*/; DROP TABLE audit_log; -- 😀"
	for _, size := range []int{4088, 4095, 1} {
		if size == 1 && testing.Short() {
			continue
		}
		r := logged(t, tds.TypeSQLBatch, tds.AppendSQLBatch(nil, text), size)
		if !strings.HasPrefix(r.Command, "SELECT 1 /*padding") || !strings.HasSuffix(r.Command, "*/; DROP TABLE audit_log; -- 😀") {
			t.Fatalf("packets of %d: kept %.60q … %q", size, r.Command, r.Command[len(r.Command)-60:])
		}
		if c := r.Truncated; c == nil || c.Field != "command" || c.Length != int64(len(text)) || c.SHA256 != sum(text) {
			t.Fatalf("packets of %d: truncated %+v", size, c)
		}
	}
	// A short batch is kept whole, surrogates split or not.
	short := "SELECT N'😀é' -- " + string(rune(0x10348))
	for _, size := range []int{1, 3, 23} {
		if r := logged(t, tds.TypeSQLBatch, tds.AppendSQLBatch(nil, short), size); r.Command != short || r.Truncated != nil {
			t.Fatalf("packets of %d: %q %+v", size, r.Command, r.Truncated)
		}
	}
	// A lone surrogate reads as tds.BatchText reads it.
	lone := tds.AppendSQLBatch(nil, "a")
	lone = binary.LittleEndian.AppendUint16(lone, 0xD800)
	lone = binary.LittleEndian.AppendUint16(lone, 'b')
	want, _ := tds.BatchText(lone)
	if r := logged(t, tds.TypeSQLBatch, lone, 3); r.Command != want {
		t.Fatalf("lone surrogate: %q, want %q", r.Command, want)
	}
}

// rpcExecuteSQL is sp_executesql with one NVARCHAR(MAX) statement.
func rpcExecuteSQL(stmt string) []byte {
	b := []byte{0xFF, 0xFF, 10, 0, 0, 0} // by number: sp_executesql; no options
	b = append(b, 0, 0, tds.TypeNVarChar, 0xFF, 0xFF)
	b = append(b, tds.Collation...)
	u := utf16.Encode([]rune(stmt))
	v := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(v[2*i:], c)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(v)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	b = append(b, v...)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// TestPaddedRPCParameterKeepsItsTail: an RPC parameter padded past its
// bound keeps its end, and says how long it was and its hash.
func TestPaddedRPCParameterKeepsItsTail(t *testing.T) {
	stmt := "SELECT 1 /*" + strings.Repeat("x", 200<<10) + "*/; DROP TABLE audit_log"
	r := logged(t, tds.TypeRPC, rpcExecuteSQL(stmt), 4088)
	literal := "N'" + stmt + "'"
	if r.Command != "sp_executesql" || !strings.HasPrefix(r.Data, "(unnamed) = N'SELECT 1 /*xxx") || !strings.HasSuffix(r.Data, "*/; DROP TABLE audit_log'") ||
		!strings.Contains(r.Data, "sha256 "+sum(literal)) || !strings.Contains(r.Data, fmt.Sprintf(" of %d bytes", len(literal))) {
		t.Fatalf("kept %.80q … %q", r.Data, r.Data[len(r.Data)-80:])
	}
	if c := r.Truncated; c == nil || c.Values != 1 || c.Unread {
		t.Fatalf("truncated %+v", c)
	}
	// Past what pamd reads: the request's length and hash.
	big := rpcExecuteSQL(strings.Repeat("y", 600<<10) + "; DROP TABLE audit_log")
	r = logged(t, tds.TypeRPC, big, 4088)
	if c := r.Truncated; c == nil || !c.Unread || c.Length != int64(len(big)) || c.SHA256 != sum(string(big)) {
		t.Fatalf("truncated %+v", c)
	}
	if r.Data != "…" || len(r.Data) > proxy.LogTextMax {
		t.Fatalf("data %.80q", r.Data)
	}
}

// FuzzBatchLog: the batch text logged from packets of any size is what
// tds.BatchText reads from the whole payload.
func FuzzBatchLog(f *testing.F) {
	f.Add(tds.AppendSQLBatch(nil, "SELECT N'😀'"), uint8(3))
	f.Add([]byte{0x3D, 0xD8, 'a', 0, 0x00, 0xDC, 1}, uint8(1))
	f.Fuzz(func(t *testing.T, payload []byte, size uint8) {
		payload = payload[:len(payload)&^1] // a batch is whole code units
		if len(payload) == 0 || len(payload) > 8<<10 {
			return
		}
		want, _ := tds.BatchText(payload)
		var b batchLog
		for i := 0; i < len(payload); i += int(size) + 1 {
			b.feed(payload[i:min(i+int(size)+1, len(payload))])
		}
		if got, cut := b.finish(); got != want || cut != nil {
			t.Fatalf("logged %q, BatchText reads %q", got, want)
		}
	})
}

// TestPumpPassesPacketsWhole sends packets of many sizes (to the largest
// TDS allows) over a connection that delivers them in odd pieces, and
// checks that pump shows each packet whole, in order, and passes every
// byte on unchanged.
func TestPumpPassesPacketsWhole(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{tds.HeaderLen, 9, 512, 4096, tds.MaxPacket, 3, 100, tds.MaxPacket - 1, 8000} {
		if n < tds.HeaderLen {
			n = tds.HeaderLen + n
		}
		p := make([]byte, n)
		p[0], p[1] = tds.TypeSQLBatch, byte(i)
		binary.BigEndian.PutUint16(p[2:4], uint16(n))
		for j := tds.HeaderLen; j < n; j++ {
			p[j] = byte(i + j)
		}
		stream = append(stream, p...)
		want = append(want, p[tds.HeaderLen:])
	}
	src, srcPeer := net.Pipe()
	dst, dstPeer := net.Pipe()
	go func() { // odd piece sizes: headers and packets split across reads
		for b := stream; len(b) > 0; {
			k := min(len(b), 1+len(b)%7919)
			srcPeer.Write(b[:k])
			b = b[k:]
		}
		srcPeer.Close()
	}()
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(dstPeer); got <- b }()
	var seen [][]byte
	err := pump(src, dst, func(typ, status byte, payload []byte) {
		seen = append(seen, append([]byte(nil), payload...))
	})
	dst.Close()
	if err != io.EOF {
		t.Fatalf("pump: %v, want io.EOF", err)
	}
	if b := <-got; !bytes.Equal(b, stream) {
		t.Fatalf("passed %d bytes, want the %d sent unchanged", len(b), len(stream))
	}
	if len(seen) != len(want) {
		t.Fatalf("saw %d packets, want %d", len(seen), len(want))
	}
	for i := range want {
		if !bytes.Equal(seen[i], want[i]) {
			t.Fatalf("packet %d shown as %d bytes, want %d", i, len(seen[i]), len(want[i]))
		}
	}
}
