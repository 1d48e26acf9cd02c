package pgwire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Request codes of the packets a connection may start with, in place of a
// protocol version.
const (
	CodeCancel  uint32 = 80877102
	CodeSSL     uint32 = 80877103
	CodeGSSENC  uint32 = 80877104
	Protocol3_0 uint32 = 3 << 16
)

const (
	// MaxStartup bounds a startup packet, length included, as the server
	// does (MAX_STARTUP_PACKET_LENGTH).
	MaxStartup = 10000
	// HeaderLen is a typed message's type byte and length.
	HeaderLen = 5
	// MaxMessage bounds a typed message's length field: the server's own
	// limit on a value is 1 GB.
	MaxMessage = 1 << 30
)

var (
	// ErrLength is a length field out of bounds.
	ErrLength = errors.New("pgwire: bad length")
	// ErrTooLong is a message longer than the caller reads.
	ErrTooLong = errors.New("pgwire: message too long")
)

// ReadStartup reads one startup packet from r and returns its body: the
// request code or protocol version (Code) and what follows. It reads
// exactly the packet.
func ReadStartup(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 8 || n > MaxStartup {
		return nil, fmt.Errorf("%w: startup packet of %d bytes", ErrLength, n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, unexpected(err)
	}
	return body, nil
}

// Code is a startup packet body's request code or protocol version.
func Code(body []byte) uint32 {
	if len(body) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(body)
}

// AppendStartup appends a startup packet with body (as pgproto3 encodes
// one without its length) to dst.
func AppendStartup(dst, body []byte) ([]byte, error) {
	if len(body) < 4 || len(body)+4 > MaxStartup {
		return dst, fmt.Errorf("%w: startup body of %d bytes", ErrLength, len(body))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+4))
	return append(dst, body...), nil
}

// Header reads a typed message's header from b (at least HeaderLen bytes):
// its type and its whole length on the wire, header included.
func Header(b []byte) (typ byte, total int, err error) {
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 4 || n > MaxMessage {
		return 0, 0, fmt.Errorf("%w: message %q of length %d", ErrLength, b[0], n)
	}
	return b[0], int(n) + 1, nil
}

// ReadMessage reads one typed message of at most max bytes (header
// included) and returns its type and body. The body is valid until the
// next read from r.
func ReadMessage(r *bufio.Reader, max int) (byte, []byte, error) {
	hdr, err := r.Peek(HeaderLen)
	if err != nil {
		if err == io.EOF && r.Buffered() > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	typ, total, err := Header(hdr)
	if err != nil {
		return 0, nil, err
	}
	if total > max {
		return 0, nil, fmt.Errorf("%w: %q of %d bytes, reading at most %d", ErrTooLong, typ, total, max)
	}
	var msg []byte
	if total <= r.Size() {
		if msg, err = r.Peek(total); err != nil {
			return 0, nil, unexpected(err)
		}
		r.Discard(total)
	} else {
		msg = make([]byte, total)
		if _, err := io.ReadFull(r, msg); err != nil {
			return 0, nil, unexpected(err)
		}
	}
	return typ, msg[HeaderLen:], nil
}

// AppendMessage appends a typed message to dst; it refuses a body whose
// length does not fit the length field.
func AppendMessage(dst []byte, typ byte, body []byte) ([]byte, error) {
	if len(body) > MaxMessage-4 || len(body) > math.MaxInt32-4 {
		return dst, fmt.Errorf("%w: body of %d bytes", ErrTooLong, len(body))
	}
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+4))
	return append(dst, body...), nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
