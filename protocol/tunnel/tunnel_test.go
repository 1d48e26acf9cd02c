package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	d := Descriptor{SessionID: "s1", Protocol: "tcp", Target: "127.0.0.1:7", ExpiresAt: time.Unix(1700000000, 0).UTC()}
	h, err := NewHeader(KindDial, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadHeader(bytes.NewReader(h.Append(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindDial {
		t.Fatalf("kind = %v", got.Kind)
	}
	var back Descriptor
	if err := got.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back != d {
		t.Fatalf("descriptor = %+v, want %+v", back, d)
	}
}

func TestHeaderOverTransports(t *testing.T) {
	// Over a pipe and over TCP the reader must cope with short reads.
	h, _ := NewHeader(KindAccess, Access{SessionID: "abc", Credential: "secret"})
	check := func(t *testing.T, c1, c2 net.Conn) {
		go func() {
			b := h.Append(nil)
			for i := range b { // one byte a write
				c1.Write(b[i : i+1])
			}
			OK().WriteTo(c1)
		}()
		got, err := ReadHeader(c2)
		if err != nil || got.Kind != KindAccess {
			t.Fatalf("ReadHeader = %v, %v", got, err)
		}
		r, err := ReadReply(c2)
		if err != nil || r.Err() != nil {
			t.Fatalf("ReadReply = %v, %v", r, err)
		}
	}
	t.Run("pipe", func(t *testing.T) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		check(t, c1, c2)
	})
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c1, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		c2, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		check(t, c1, c2)
	})
}

func TestReadHeaderRejects(t *testing.T) {
	good, _ := NewHeader(KindHello, Hello{Name: "gw"})
	enc := good.Append(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), enc...)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"truncated fixed", enc[:5], io.ErrUnexpectedEOF},
		{"truncated body", enc[:len(enc)-1], io.ErrUnexpectedEOF},
		{"magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadMagic},
		{"version", mut(func(b []byte) []byte { b[4] = 9; return b }), ErrVersion},
		{"kind zero", mut(func(b []byte) []byte { b[5] = 0; return b }), ErrKind},
		{"kind high", mut(func(b []byte) []byte { b[5] = 99; return b }), ErrKind},
		{"huge length", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[6:], 1<<31); return b }), ErrTooLarge},
		{"not json", mut(func(b []byte) []byte { b[headerLen] = '['; return b }), ErrBadBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// countingReader counts what ReadHeader consumed.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestHeaderBodyLimitPerKind(t *testing.T) {
	claim := func(kind Kind, n int) []byte {
		b := append([]byte("PAMD"), Version, byte(kind))
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		return append(b, bytes.Repeat([]byte{' '}, n)...) // the body follows in full
	}
	tests := []struct {
		kind Kind
		n    int
		ok   bool
	}{
		{KindAccess, MaxSmallBody, true},
		{KindAccess, MaxSmallBody + 1, false},
		{KindAccess, MaxBody, false},
		{KindControl, MaxBody, false},
		{KindHello, MaxSmallBody + 1, false},
		{KindRecord, MaxSmallBody + 1, false},
		{KindRenew, MaxSmallBody + 1, false},
		{KindDial, MaxBody, true},
		{KindProbe, MaxBody, true},
		{KindNotice, MaxBody, true},
		{KindRotate, MaxBody, true},
		{KindDial, MaxBody + 1, false},
	}
	for _, tt := range tests {
		in := claim(tt.kind, tt.n)
		in[headerLen], in[len(in)-1] = '{', '}'
		r := &countingReader{r: bytes.NewReader(in)}
		_, err := ReadHeader(r)
		if tt.ok != (err == nil) {
			t.Errorf("%s body of %d bytes: err = %v", tt.kind, tt.n, err)
		}
		if !tt.ok && (!errors.Is(err, ErrTooLarge) || r.n != headerLen) {
			t.Errorf("%s body of %d bytes: read %d bytes before refusing (%v); want the fixed header only", tt.kind, tt.n, r.n, err)
		}
	}
	// The writer keeps to the reader's limit.
	if _, err := NewHeader(KindAccess, Access{SessionID: "s", Credential: strings.Repeat("x", MaxSmallBody)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("NewHeader of an oversized access body: %v", err)
	}
}

func TestReply(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // 2 bytes a rune: must be cut on a rune boundary
	for _, r := range []*Reply{OK(), Refuse("session %s expired", "x"), {Status: StatusRefused, Message: long}} {
		got, err := ReadReply(bytes.NewReader(r.Append(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != r.Status || !strings.HasPrefix(r.Message, got.Message) || len(got.Message) > MaxMessage {
			t.Fatalf("got %+v", got)
		}
	}
	if err := Refuse("no").Err(); err == nil || err.Error() != "no" {
		t.Fatalf("Err() = %v", err)
	}
	if r, err := ReadReply(bytes.NewReader((&Reply{Status: StatusTargetFailed, Message: "host key mismatch"}).Append(nil))); err != nil || r.Err() != nil {
		t.Fatalf("target-failed reply: %v %v (it is served, not refused)", r, err)
	}
	if _, err := ReadReply(bytes.NewReader([]byte{1, 7, 0, 0})); !errors.Is(err, ErrBadStatus) {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := ReadReply(bytes.NewReader([]byte{1, 1, 0xff, 0xff})); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long message: %v", err)
	}
	if _, err := ReadReply(bytes.NewReader([]byte{1, 1, 0, 1, 0xff})); !errors.Is(err, ErrBadEncoding) {
		t.Fatalf("bad utf-8: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	(&Message{Type: MsgEnded, Reason: "terminated by admin"}).WriteTo(&buf)
	(&Message{Type: MsgEnd}).WriteTo(&buf)
	m1, err := ReadMessage(&buf)
	if err != nil || m1.Type != MsgEnded || m1.Reason != "terminated by admin" {
		t.Fatalf("m1 = %+v, %v", m1, err)
	}
	m2, err := ReadMessage(&buf)
	if err != nil || m2.Type != MsgEnd {
		t.Fatalf("m2 = %+v, %v", m2, err)
	}
	if _, err := ReadMessage(bytes.NewReader([]byte{0x7f, 0, 0, 0})); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge: %v", err)
	}
}

func TestDescriptorStringHasNoSecret(t *testing.T) {
	d := Descriptor{Protocol: "mssql", Resource: "db", Account: "ops", Target: "h:1", MSSQL: &MSSQLTarget{Login: Login{Username: "sa", Password: "hunter2"}}}
	if s := d.String(); strings.Contains(s, "hunter2") {
		t.Fatalf("String() leaks the password: %q", s)
	}
}

func TestUnbatch(t *testing.T) {
	one := Record{Type: "query", SessionID: "s", Command: "SELECT 1"}
	if got, err := Unbatch(one); err != nil || len(got) != 1 || got[0].Command != "SELECT 1" {
		t.Fatalf("a record that is no batch: %+v %v", got, err)
	}
	b := Record{Seq: 7, Type: RecordBatch, SessionID: "s", ConnectionID: "c", Database: "orders",
		Data: `[{"type":"query","command":"SELECT 1","session_id":"other"},{"type":"execute","command":"SELECT 2","database":"app"}]`}
	got, err := Unbatch(b)
	if err != nil || len(got) != 2 {
		t.Fatalf("Unbatch: %+v %v", got, err)
	}
	if got[0].SessionID != "s" || got[0].ConnectionID != "c" || got[0].Database != "orders" || got[0].Seq != 7 || got[0].Command != "SELECT 1" {
		t.Fatalf("first: %+v", got[0])
	}
	if got[1].Database != "app" || got[1].Type != "execute" {
		t.Fatalf("second: %+v", got[1])
	}
	for _, data := range []string{`[{"type":"batch","data":"[]"}]`, `{`, `"x"`} {
		if _, err := Unbatch(Record{Type: RecordBatch, Data: data}); err == nil {
			t.Fatalf("Unbatch(%s) took it", data)
		}
	}
}
