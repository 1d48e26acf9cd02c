package sftp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Packet types (SFTP v3).
const (
	TypeInit     = 1
	TypeVersion  = 2
	TypeOpen     = 3
	TypeClose    = 4
	TypeRead     = 5
	TypeWrite    = 6
	TypeRemove   = 13
	TypeMkdir    = 14
	TypeRmdir    = 15
	TypeRename   = 18
	TypeStatus   = 101
	TypeHandle   = 102
	TypeData     = 103
	TypeExtended = 200
)

// Open flags.
const (
	FlagRead   = 0x01
	FlagWrite  = 0x02
	FlagCreate = 0x08
)

// MaxPacket bounds a packet: OpenSSH's own limit is 256 KiB of payload.
const MaxPacket = 256<<10 + 1024

// ErrMalformed means a packet's fields do not fit its length.
var ErrMalformed = errors.New("sftp: malformed packet")

// Packet is one SFTP packet. ID is zero for INIT and VERSION.
type Packet struct {
	Type    byte
	ID      uint32
	Payload []byte // after the type (and id)
}

// ReadPacket reads one packet from r.
func ReadPacket(r io.Reader) (*Packet, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("sftp: read packet: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 1 || n > MaxPacket {
		return nil, fmt.Errorf("sftp: packet length %d: %w", n, ErrMalformed)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("sftp: read packet body: %w", err)
	}
	p := &Packet{Type: hdr[4], Payload: body}
	if p.Type != TypeInit && p.Type != TypeVersion {
		if len(body) < 4 {
			return nil, ErrMalformed
		}
		p.ID, p.Payload = binary.BigEndian.Uint32(body), body[4:]
	}
	return p, nil
}

// Append encodes the packet onto b.
func (p *Packet) Append(b []byte) []byte {
	n := 1 + len(p.Payload)
	if p.Type != TypeInit && p.Type != TypeVersion {
		n += 4
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, p.Type)
	if p.Type != TypeInit && p.Type != TypeVersion {
		b = binary.BigEndian.AppendUint32(b, p.ID)
	}
	return append(b, p.Payload...)
}

// Fields decodes a payload field by field; the first error sticks.
type Fields struct {
	b   []byte
	Err error
}

// NewFields starts decoding p's payload.
func (p *Packet) Fields() *Fields { return &Fields{b: p.Payload} }

func (f *Fields) Uint32() uint32 {
	if f.Err != nil || len(f.b) < 4 {
		f.Err = ErrMalformed
		return 0
	}
	v := binary.BigEndian.Uint32(f.b)
	f.b = f.b[4:]
	return v
}

func (f *Fields) Uint64() uint64 {
	if f.Err != nil || len(f.b) < 8 {
		f.Err = ErrMalformed
		return 0
	}
	v := binary.BigEndian.Uint64(f.b)
	f.b = f.b[8:]
	return v
}

// Bytes returns a string field without copying.
func (f *Fields) Bytes() []byte {
	n := f.Uint32()
	if f.Err != nil || uint32(len(f.b)) < n {
		f.Err = ErrMalformed
		return nil
	}
	v := f.b[:n]
	f.b = f.b[n:]
	return v
}

func (f *Fields) Str() string { return string(f.Bytes()) }
