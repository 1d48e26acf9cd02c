package mongowire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Op codes.
const (
	OpReply      int32 = 1
	OpQuery      int32 = 2004
	OpCompressed int32 = 2012
	OpMsg        int32 = 2013
)

// HeaderLen is the size of the standard message header.
const HeaderLen = 16

// MaxMessage bounds a message: MongoDB's maxMessageSizeBytes (48 MB).
const MaxMessage = 48_000_000

var (
	ErrLength    = errors.New("mongowire: message length out of range")
	ErrMalformed = errors.New("mongowire: malformed message")
)

// Header is the standard message header.
type Header struct {
	Length     int32
	RequestID  int32
	ResponseTo int32
	OpCode     int32
}

// Message is one whole wire message: its header and the bytes after it.
type Message struct {
	Header Header
	Body   []byte
}

// ReadMessage reads one message from r.
func ReadMessage(r io.Reader) (*Message, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("mongowire: read header: %w", err)
	}
	m := &Message{Header: decodeHeader(h[:])}
	if m.Header.Length < HeaderLen || m.Header.Length > MaxMessage {
		return nil, fmt.Errorf("%w: %d", ErrLength, m.Header.Length)
	}
	m.Body = make([]byte, m.Header.Length-HeaderLen)
	if _, err := io.ReadFull(r, m.Body); err != nil {
		return nil, fmt.Errorf("mongowire: read body: %w", err)
	}
	return m, nil
}

// Parse splits a whole message held in b (as the driver hands them over).
func Parse(b []byte) (*Message, error) {
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrLength, len(b))
	}
	m := &Message{Header: decodeHeader(b)}
	if int(m.Header.Length) != len(b) {
		return nil, fmt.Errorf("%w: header says %d, have %d", ErrLength, m.Header.Length, len(b))
	}
	m.Body = b[HeaderLen:]
	return m, nil
}

func decodeHeader(b []byte) Header {
	return Header{
		Length:     int32(binary.LittleEndian.Uint32(b[0:])),
		RequestID:  int32(binary.LittleEndian.Uint32(b[4:])),
		ResponseTo: int32(binary.LittleEndian.Uint32(b[8:])),
		OpCode:     int32(binary.LittleEndian.Uint32(b[12:])),
	}
}

// Append encodes the message onto b, setting the length from the body.
func (m *Message) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(HeaderLen+len(m.Body)))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Header.RequestID))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Header.ResponseTo))
	b = binary.LittleEndian.AppendUint32(b, uint32(m.Header.OpCode))
	return append(b, m.Body...)
}

// document returns the BSON document at the start of b and the rest.
func document(b []byte) (doc, rest []byte, err error) {
	if len(b) < 5 {
		return nil, nil, ErrMalformed
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 5 || n > len(b) || b[n-1] != 0 {
		return nil, nil, ErrMalformed
	}
	return b[:n], b[n:], nil
}

// cstring returns the NUL-terminated string at the start of b and the rest.
func cstring(b []byte) (string, []byte, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], nil
		}
	}
	return "", nil, ErrMalformed
}
