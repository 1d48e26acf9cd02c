package mongowire

import (
	"encoding/binary"
	"fmt"
)

// Query is a legacy OP_QUERY; pamd meets it only as the first hello or
// isMaster of old clients.
type Query struct {
	Flags      uint32
	Collection string // full name, "admin.$cmd" for commands
	Skip       int32
	Return     int32
	Query      []byte
}

// ParseQuery decodes an OP_QUERY body.
func ParseQuery(body []byte) (*Query, error) {
	if len(body) < 4 {
		return nil, ErrMalformed
	}
	q := &Query{Flags: binary.LittleEndian.Uint32(body)}
	coll, rest, err := cstring(body[4:])
	if err != nil || len(rest) < 8 {
		return nil, fmt.Errorf("%w: OP_QUERY", ErrMalformed)
	}
	q.Collection = coll
	q.Skip = int32(binary.LittleEndian.Uint32(rest))
	q.Return = int32(binary.LittleEndian.Uint32(rest[4:]))
	if q.Query, _, err = document(rest[8:]); err != nil {
		return nil, fmt.Errorf("%w: OP_QUERY document", ErrMalformed)
	}
	return q, nil
}

// Reply is a legacy OP_REPLY.
type Reply struct {
	Flags     uint32
	CursorID  int64
	Starting  int32
	Documents [][]byte
}

// ParseReply decodes an OP_REPLY body.
func ParseReply(body []byte) (*Reply, error) {
	if len(body) < 20 {
		return nil, ErrMalformed
	}
	r := &Reply{
		Flags:    binary.LittleEndian.Uint32(body),
		CursorID: int64(binary.LittleEndian.Uint64(body[4:])),
		Starting: int32(binary.LittleEndian.Uint32(body[12:])),
	}
	n := int(int32(binary.LittleEndian.Uint32(body[16:])))
	b := body[20:]
	for i := 0; i < n; i++ {
		doc, rest, err := document(b)
		if err != nil {
			return nil, fmt.Errorf("%w: OP_REPLY document %d", ErrMalformed, i)
		}
		r.Documents, b = append(r.Documents, doc), rest
	}
	if n < 0 || len(b) != 0 {
		return nil, fmt.Errorf("%w: OP_REPLY document count", ErrMalformed)
	}
	return r, nil
}

// AppendBody encodes the reply as a message body.
func (r *Reply) AppendBody(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, r.Flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.CursorID))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.Starting))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Documents)))
	for _, d := range r.Documents {
		b = append(b, d...)
	}
	return b
}

// AppendBody encodes the query as a message body.
func (q *Query) AppendBody(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, q.Flags)
	b = append(b, q.Collection...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(q.Skip))
	b = binary.LittleEndian.AppendUint32(b, uint32(q.Return))
	return append(b, q.Query...)
}
