package sftp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func str(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }

func seeds() [][]byte {
	open := append(str("/tmp/upload.bin"), 0, 0, 0, FlagWrite|FlagCreate, 0, 0, 0, 0)
	write := append(append(str("h1"), 0, 0, 0, 0, 0, 0, 0, 0), str("hello")...)
	return [][]byte{
		(&Packet{Type: TypeInit, Payload: []byte{0, 0, 0, 3}}).Append(nil),
		(&Packet{Type: TypeOpen, ID: 1, Payload: open}).Append(nil),
		(&Packet{Type: TypeHandle, ID: 1, Payload: str("h1")}).Append(nil),
		(&Packet{Type: TypeWrite, ID: 2, Payload: write}).Append(nil),
		(&Packet{Type: TypeClose, ID: 3, Payload: str("h1")}).Append(nil),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range seeds() {
		p, err := ReadPacket(bytes.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Append(nil); !bytes.Equal(got, s) {
			t.Fatalf("re-encoded %x, want %x", got, s)
		}
	}
	f := (&Packet{Payload: append(str("/a"), 0, 0, 0, 2)}).Fields()
	if f.Str() != "/a" || f.Uint32() != 2 || f.Err != nil {
		t.Fatal("field decoding")
	}
	if f.Uint64(); f.Err == nil {
		t.Fatal("reading past the end did not fail")
	}
}

func TestRejects(t *testing.T) {
	for _, in := range [][]byte{
		{0, 0, 0, 0, TypeOpen},             // zero length
		{0xff, 0xff, 0xff, 0xff, TypeOpen}, // huge
		{0, 0, 0, 3, TypeOpen, 0, 0},       // no room for the id
		{0, 0, 0, 9, TypeOpen, 0},          // truncated
	} {
		if _, err := ReadPacket(bytes.NewReader(in)); err == nil {
			t.Errorf("%x accepted", in)
		}
	}
}

func FuzzReadPacket(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ReadPacket(bytes.NewReader(in))
		if err != nil {
			return
		}
		if got := p.Append(nil); !bytes.Equal(got, in[:len(got)]) {
			t.Fatal("re-encoding differs")
		}
		fl := p.Fields()
		fl.Str()
		fl.Uint64()
		fl.Bytes()
	})
}
