package tunnel

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the header and reply version this package writes and reads.
const Version = 1

// MaxBody bounds the header body of the kinds the server opens (dial,
// probe, notice, rotate), whose descriptors may carry keys and
// certificates. MaxSmallBody bounds the others (access, control, hello,
// record, renew): their bodies are a few names, a credential or a CSR, and
// a peer that has not authenticated yet opens some of them, so a reader
// must not allocate more than this for such a peer's say-so.
const (
	MaxBody      = 64 << 10
	MaxSmallBody = 4 << 10
)

// Kind says what a stream is for.
type Kind uint8

// Stream kinds; see the package documentation.
const (
	KindAccess   Kind = 1
	KindDial     Kind = 2
	KindControl  Kind = 3
	KindHello    Kind = 4
	KindProbe    Kind = 5
	KindNotice   Kind = 6
	KindRecord   Kind = 7
	KindRotate   Kind = 8
	KindRenew    Kind = 9
	KindWatch    Kind = 10
	KindDBCert   Kind = 11
	KindRenewNow Kind = 12
)

func (k Kind) String() string {
	switch k {
	case KindAccess:
		return "access"
	case KindDial:
		return "dial"
	case KindControl:
		return "control"
	case KindHello:
		return "hello"
	case KindProbe:
		return "probe"
	case KindNotice:
		return "notice"
	case KindRecord:
		return "record"
	case KindRotate:
		return "rotate"
	case KindRenew:
		return "renew"
	case KindWatch:
		return "watch"
	case KindDBCert:
		return "dbcert"
	case KindRenewNow:
		return "renew-now"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxBody is the largest header body a stream of kind k may carry.
func (k Kind) MaxBody() int {
	switch k {
	case KindDial, KindProbe, KindNotice, KindRotate:
		return MaxBody
	}
	return MaxSmallBody
}

var magic = [4]byte{'P', 'A', 'M', 'D'}

const headerLen = 10

// Errors returned by the readers.
var (
	ErrBadMagic    = errors.New("tunnel: not a pamd stream (bad magic)")
	ErrVersion     = errors.New("tunnel: unsupported version")
	ErrKind        = errors.New("tunnel: unknown stream kind")
	ErrTooLarge    = errors.New("tunnel: length exceeds limit")
	ErrBadBody     = errors.New("tunnel: body is not a JSON object")
	ErrBadStatus   = errors.New("tunnel: unknown reply status")
	ErrBadEncoding = errors.New("tunnel: message is not valid UTF-8")
)

// Header opens a stream.
type Header struct {
	Kind Kind
	// Body is the kind's JSON object, not yet decoded.
	Body []byte
}

// NewHeader builds a header whose body is v encoded as JSON.
func NewHeader(kind Kind, v any) (*Header, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("tunnel: encode %s body: %w", kind, err)
	}
	if len(body) > kind.MaxBody() {
		return nil, fmt.Errorf("tunnel: encode %s body: %d bytes: %w", kind, len(body), ErrTooLarge)
	}
	return &Header{Kind: kind, Body: body}, nil
}

// ReadHeader reads one header from r.
func ReadHeader(r io.Reader) (*Header, error) {
	var fixed [headerLen]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("tunnel: read header: %w", err)
	}
	if [4]byte(fixed[0:4]) != magic {
		return nil, ErrBadMagic
	}
	if fixed[4] != Version {
		return nil, fmt.Errorf("%w %d (this side speaks %d)", ErrVersion, fixed[4], Version)
	}
	kind := Kind(fixed[5])
	if kind < KindAccess || kind > KindRenewNow {
		return nil, fmt.Errorf("%w %d", ErrKind, fixed[5])
	}
	// The limit depends on the kind, and is checked before allocating.
	n := binary.BigEndian.Uint32(fixed[6:10])
	if n < 2 || n > uint32(kind.MaxBody()) {
		return nil, fmt.Errorf("tunnel: %s header body of %d bytes: %w", kind, n, ErrTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("tunnel: read header body: %w", err)
	}
	if body[0] != '{' || !json.Valid(body) {
		return nil, ErrBadBody
	}
	return &Header{Kind: kind, Body: body}, nil
}

// Append appends the encoded header to b.
func (h *Header) Append(b []byte) []byte {
	b = append(b, magic[:]...)
	b = append(b, Version, byte(h.Kind))
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Body)))
	return append(b, h.Body...)
}

// WriteTo writes the encoded header to w in one call.
func (h *Header) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(h.Append(make([]byte, 0, headerLen+len(h.Body))))
	if err != nil {
		return int64(n), fmt.Errorf("tunnel: write %s header: %w", h.Kind, err)
	}
	return int64(n), nil
}

// Decode unmarshals the body into v.
func (h *Header) Decode(v any) error {
	if err := json.Unmarshal(h.Body, v); err != nil {
		return fmt.Errorf("tunnel: decode %s body: %w", h.Kind, err)
	}
	return nil
}
