package mongoproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/pamd/pamd/protocol/mongowire"
)

// TestReadMessageKeepsTheBytesRead: a message comes back as read, with the
// parsed message over those same bytes, so relaying it unchanged sends
// exactly what the client sent; lengths out of range are refused before
// anything is allocated for them.
func TestReadMessageKeepsTheBytesRead(t *testing.T) {
	m := &mongowire.Message{Header: mongowire.Header{RequestID: 7, OpCode: mongowire.OpMsg}, Body: []byte("\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00")}
	wire := m.Append(nil)
	raw, got, err := readMessage(bytes.NewReader(append(append([]byte{}, wire...), wire...)))
	if err != nil || !bytes.Equal(raw, wire) {
		t.Fatalf("read %x, %v; want %x", raw, err, wire)
	}
	if got.Header.RequestID != 7 || got.Header.OpCode != mongowire.OpMsg || !bytes.Equal(got.Body, m.Body) || &got.Body[0] != &raw[mongowire.HeaderLen] {
		t.Fatalf("parsed %+v, not over the bytes read", got)
	}
	if _, _, err := readMessage(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
	for _, n := range []uint32{mongowire.HeaderLen - 1, mongowire.MaxMessage + 1} {
		bad := binary.LittleEndian.AppendUint32(nil, n)
		bad = append(bad, make([]byte, 12)...)
		if _, _, err := readMessage(bytes.NewReader(bad)); !errors.Is(err, mongowire.ErrLength) {
			t.Fatalf("length %d: %v, want ErrLength", n, err)
		}
	}
}
