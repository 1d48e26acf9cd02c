package pgwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzReadStartup: any input reads as a packet whose length matches what
// was consumed, or fails; a packet read appends back to the same bytes.
func FuzzReadStartup(f *testing.F) {
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	startup, _ := (&pgproto3.StartupMessage{ProtocolVersion: Protocol3_0, Parameters: map[string]string{"user": "u", "database": "d"}}).Encode(nil)
	cancel, _ := (&pgproto3.CancelRequest{ProcessID: 7, SecretKey: []byte{1, 2, 3, 4}}).Encode(nil)
	for _, s := range [][]byte{ssl, startup, cancel, {0, 0, 0, 7}, {0, 0, 0x27, 0x11, 1, 2, 3, 4}, {0xff, 0xff, 0xff, 0xff}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		body, err := ReadStartup(r)
		if err != nil {
			return
		}
		used := len(in) - r.Len()
		if used != len(body)+4 || int(binary.BigEndian.Uint32(in)) != used || used > MaxStartup {
			t.Fatalf("read %d bytes for a %d-byte body", used, len(body))
		}
		out, err := AppendStartup(nil, body)
		if err != nil || !bytes.Equal(out, in[:used]) {
			t.Fatalf("append: %v", err)
		}
	})
}

// FuzzReadMessage: messages read from any input have the length their
// header says and append back to the bytes read; a bound is kept.
func FuzzReadMessage(f *testing.F) {
	q, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	z, _ := (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(nil)
	f.Add(append(q, z...), 64)
	f.Add([]byte{'Q', 0, 0, 0, 3}, 64)
	f.Add([]byte{'d', 0x7f, 0xff, 0xff, 0xff}, 1<<20)
	f.Add(bytes.Repeat([]byte{'d', 0, 0, 0x10, 4}, 2), 8192)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < HeaderLen || max > 1<<20 {
			max = 1 << 16
		}
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		used := 0
		for {
			typ, body, err := ReadMessage(br, max)
			if err != nil {
				if err == io.EOF && used != len(in) {
					t.Fatalf("EOF after %d of %d bytes", used, len(in))
				}
				if errors.Is(err, ErrTooLong) && len(body) != 0 {
					t.Fatal("a body with an error")
				}
				return
			}
			out, err := AppendMessage(nil, typ, body)
			if err != nil || len(out) > max || !bytes.Equal(out, in[used:used+len(out)]) {
				t.Fatalf("message at %d does not append back: %v", used, err)
			}
			used += len(out)
		}
	})
}

// TestBounds: lengths below the minimum or past the bounds are refused,
// reading and writing.
func TestBounds(t *testing.T) {
	if _, err := ReadStartup(bytes.NewReader([]byte{0, 0, 0, 4})); !errors.Is(err, ErrLength) {
		t.Fatalf("4-byte startup: %v", err)
	}
	if _, err := ReadStartup(bytes.NewReader([]byte{0, 0, 0x27, 0x11})); !errors.Is(err, ErrLength) {
		t.Fatalf("10001-byte startup: %v", err)
	}
	if _, err := ReadStartup(bytes.NewReader([]byte{0, 0, 0, 9, 0, 3, 0, 0})); err != io.ErrUnexpectedEOF {
		t.Fatalf("short startup: %v", err)
	}
	if _, err := AppendStartup(nil, make([]byte, MaxStartup)); !errors.Is(err, ErrLength) {
		t.Fatalf("long startup body: %v", err)
	}
	br := bufio.NewReader(bytes.NewReader([]byte{'Q', 0, 0, 0, 2}))
	if _, _, err := ReadMessage(br, 100); !errors.Is(err, ErrLength) {
		t.Fatalf("length 2: %v", err)
	}
	br = bufio.NewReader(bytes.NewReader([]byte{'Q', 0, 0, 1, 0}))
	if _, _, err := ReadMessage(br, 100); !errors.Is(err, ErrTooLong) {
		t.Fatalf("past max: %v", err)
	}
	br = bufio.NewReader(bytes.NewReader([]byte{'Q', 0, 0, 0, 9, 'a'}))
	if _, _, err := ReadMessage(br, 100); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut short: %v", err)
	}
	if _, err := AppendMessage(nil, 'd', make([]byte, MaxMessage)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("huge body: %v", err)
	}
}
