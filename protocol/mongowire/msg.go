package mongowire

import (
	"encoding/binary"
	"fmt"
)

// OP_MSG flag bits.
const (
	FlagChecksumPresent uint32 = 1 << 0
	FlagMoreToCome      uint32 = 1 << 1
	FlagExhaustAllowed  uint32 = 1 << 16
)

// Msg is an OP_MSG: the body document and any document sequences.
type Msg struct {
	Flags     uint32
	Body      []byte // kind 0 section: one BSON document
	Sequences []Sequence
}

// Sequence is a kind 1 section: documents named by an identifier, such as
// the "documents" of an insert.
type Sequence struct {
	Identifier string
	Documents  [][]byte
}

// ParseMsg decodes an OP_MSG body.
func ParseMsg(body []byte) (*Msg, error) {
	if len(body) < 5 {
		return nil, fmt.Errorf("%w: OP_MSG of %d bytes", ErrMalformed, len(body))
	}
	m := &Msg{Flags: binary.LittleEndian.Uint32(body)}
	b := body[4:]
	if m.Flags&FlagChecksumPresent != 0 {
		if len(b) < 4 {
			return nil, ErrMalformed
		}
		b = b[:len(b)-4] // the checksum covers what relays pass unchanged
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0:
			doc, rest, err := document(b)
			if err != nil || m.Body != nil {
				return nil, fmt.Errorf("%w: OP_MSG body section", ErrMalformed)
			}
			m.Body, b = doc, rest
		case 1:
			if len(b) < 4 {
				return nil, ErrMalformed
			}
			size := int(binary.LittleEndian.Uint32(b))
			if size < 5 || size > len(b) {
				return nil, fmt.Errorf("%w: OP_MSG sequence size %d", ErrMalformed, size)
			}
			sec := b[4:size]
			b = b[size:]
			id, docs, err := cstring(sec)
			if err != nil {
				return nil, err
			}
			seq := Sequence{Identifier: id}
			for len(docs) > 0 {
				doc, rest, err := document(docs)
				if err != nil {
					return nil, fmt.Errorf("%w: document in sequence %q", ErrMalformed, id)
				}
				seq.Documents, docs = append(seq.Documents, doc), rest
			}
			m.Sequences = append(m.Sequences, seq)
		default:
			return nil, fmt.Errorf("%w: OP_MSG section kind %d", ErrMalformed, kind)
		}
	}
	if m.Body == nil {
		return nil, fmt.Errorf("%w: OP_MSG without a body section", ErrMalformed)
	}
	return m, nil
}

// AppendBody encodes the OP_MSG (without a checksum) as a message body.
func (m *Msg) AppendBody(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, m.Flags&^FlagChecksumPresent)
	b = append(b, 0)
	b = append(b, m.Body...)
	for _, s := range m.Sequences {
		size := 4 + len(s.Identifier) + 1
		for _, d := range s.Documents {
			size += len(d)
		}
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint32(b, uint32(size))
		b = append(b, s.Identifier...)
		b = append(b, 0)
		for _, d := range s.Documents {
			b = append(b, d...)
		}
	}
	return b
}
