package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// gatedPair is a yamux client talking to a gated server over a pipe.
func gatedPair(t *testing.T) (*yamux.Session, *yamux.Session, *StreamGate) {
	t.Helper()
	a, b := net.Pipe()
	srv, gate, err := YamuxServerGated(b)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := YamuxClient(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv, gate
}

func TestStreamGateOneStreamUntilOpen(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		cli, srv, _ := gatedPair(t)
		first, err := cli.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		first.Write([]byte("hello"))
		if _, err := srv.AcceptStream(); err != nil {
			t.Fatalf("first stream: %v", err)
		}
		if second, err := cli.OpenStream(); err == nil { // the server may have hung up already
			second.Write(bytes.Repeat([]byte{'x'}, 64<<10))
		}
		select {
		case <-srv.CloseChan():
		case <-time.After(5 * time.Second):
			t.Fatalf("a second stream before Open left the session up (%d streams)", srv.NumStreams())
		}
	})
	t.Run("open", func(t *testing.T) {
		cli, srv, gate := gatedPair(t)
		first, _ := cli.OpenStream()
		first.Write([]byte("hello"))
		if _, err := srv.AcceptStream(); err != nil {
			t.Fatal(err)
		}
		gate.Open()
		for i := range 50 {
			st, err := cli.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			st.Write([]byte("more"))
			if _, err := srv.AcceptStream(); err != nil {
				t.Fatalf("stream %d after Open: %v", i+2, err)
			}
		}
	})
}

// frame encodes one yamux frame header (and body, for data frames).
func frame(typ uint8, flags uint16, id uint32, body []byte, length uint32) []byte {
	b := []byte{0, typ}
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, body...)
}

func TestStreamGateScan(t *testing.T) {
	data := func(flags uint16, id uint32, body string) []byte {
		return frame(yamuxTypeData, flags, id, []byte(body), uint32(len(body)))
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"one stream, data and updates", bytes.Join([][]byte{
			frame(yamuxTypeWindowUpdate, yamuxFlagSYN, 1, nil, 0),
			data(0, 1, "PAMD\x01\x03"),
			frame(yamuxTypeWindowUpdate, 0, 1, nil, 1<<20),
		}, nil), nil},
		// A SYN flag inside a data body is data, not a frame.
		{"syn-looking body", data(yamuxFlagSYN, 1, string(frame(yamuxTypeWindowUpdate, yamuxFlagSYN, 3, nil, 0))), nil},
		// Ping and go-away reuse the flags field; a ping with SYN is a ping request.
		{"ping", append(data(yamuxFlagSYN, 1, "x"), frame(2, yamuxFlagSYN, 0, nil, 7)...), nil},
		{"second stream by window update", append(data(yamuxFlagSYN, 1, "x"), frame(yamuxTypeWindowUpdate, yamuxFlagSYN, 3, nil, 0)...), ErrStreamBeforeAuth},
		{"second stream by data", append(data(yamuxFlagSYN, 1, "x"), data(yamuxFlagSYN, 3, "y")...), ErrStreamBeforeAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{len(tt.in), 1, 5, 13} {
				g := &StreamGate{}
				var err error
				for p := tt.in; len(p) > 0 && err == nil; p = p[min(chunk, len(p)):] {
					err = g.scan(p[:min(chunk, len(p))])
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("chunks of %d: err = %v, want %v", chunk, err, tt.want)
				}
			}
		})
	}
}

// FuzzStreamGate: any input, cut anywhere, parses the same as in one piece
// and never panics.
func FuzzStreamGate(f *testing.F) {
	f.Add(append(frame(yamuxTypeWindowUpdate, yamuxFlagSYN, 1, nil, 0), frame(yamuxTypeData, 0, 1, []byte("PAMD"), 4)...), uint8(3))
	f.Add(append(frame(yamuxTypeData, yamuxFlagSYN, 1, []byte("a"), 1), frame(yamuxTypeData, yamuxFlagSYN, 3, []byte("b"), 1)...), uint8(1))
	f.Add(frame(yamuxTypeData, 0, 1, nil, 0xffffffff), uint8(12))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		whole := &StreamGate{}
		werr := whole.scan(in)
		pieces := &StreamGate{}
		var perr error
		step := int(cut)%17 + 1
		for p := in; len(p) > 0 && perr == nil; p = p[min(step, len(p)):] {
			perr = pieces.scan(p[:min(step, len(p))])
		}
		if (werr == nil) != (perr == nil) || (werr == nil && (whole.syns != pieces.syns || whole.body != pieces.body || whole.n != pieces.n)) {
			t.Fatalf("whole: %v %+v; in pieces of %d: %v %+v", werr, whole, step, perr, pieces)
		}
	})
}
