package tunnel

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxMessage bounds the text of a reply.
const MaxMessage = 4096

// Status is the outcome carried by a reply.
type Status uint8

// Reply statuses.
const (
	StatusOK      Status = 0
	StatusRefused Status = 1
	// StatusTargetFailed: the stream is served, but reaching the target
	// failed as the message says; the handler tells the client in the
	// client's own protocol (an SSH banner, a TDS error), so the payload
	// follows as after OK.
	StatusTargetFailed Status = 2
)

// Reason says why a target failed; a target-failed reply carries one.
type Reason uint8

// Target failure reasons. A reader takes a reason it does not know as
// ReasonOther (String says "other").
const (
	ReasonOther Reason = 0
	// ReasonUnreachable: the gateway could not connect to the target.
	ReasonUnreachable Reason = 1
	// ReasonLoginRefused: the target refused the stored credential.
	ReasonLoginRefused Reason = 2
	// ReasonHostKeyMismatch: the target's identity is not the one pinned
	// (an SSH host key other than the resource's).
	ReasonHostKeyMismatch Reason = 3
	// ReasonProtocol: the target answered, but not as the protocol (or the
	// resource's settings, such as TLS) requires.
	ReasonProtocol Reason = 4
)

func (r Reason) String() string {
	switch r {
	case ReasonUnreachable:
		return "unreachable"
	case ReasonLoginRefused:
		return "login_refused"
	case ReasonHostKeyMismatch:
		return "host_key_mismatch"
	case ReasonProtocol:
		return "protocol"
	}
	return "other"
}

// Reply answers a header.
type Reply struct {
	Status Status
	// Reason says why the target failed (StatusTargetFailed only).
	Reason Reason
	// Message explains a refusal in words meant for the person at the client.
	Message string
}

// Refusal is the error a caller gets for a reply that is not ok. Its text is
// the peer's message, fit to show to the user.
type Refusal struct{ Message string }

func (e *Refusal) Error() string { return e.Message }

// Err returns a *Refusal for a refused stream and nil otherwise.
func (r *Reply) Err() error {
	if r.Status != StatusRefused {
		return nil
	}
	return &Refusal{Message: r.Message}
}

// ReadReply reads one reply from r.
func ReadReply(r io.Reader) (*Reply, error) {
	var fixed [4]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("tunnel: read reply: %w", err)
	}
	if fixed[0] != Version {
		return nil, fmt.Errorf("%w %d (this side speaks %d)", ErrVersion, fixed[0], Version)
	}
	st := Status(fixed[1])
	if st > StatusTargetFailed {
		return nil, fmt.Errorf("%w %d", ErrBadStatus, fixed[1])
	}
	n := binary.BigEndian.Uint16(fixed[2:4])
	if n > MaxMessage {
		return nil, fmt.Errorf("tunnel: reply message of %d bytes: %w", n, ErrTooLarge)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, fmt.Errorf("tunnel: read reply message: %w", err)
	}
	if !utf8.Valid(msg) {
		return nil, ErrBadEncoding
	}
	reply := &Reply{Status: st, Message: string(msg)}
	if st == StatusTargetFailed {
		var reason [1]byte
		if _, err := io.ReadFull(r, reason[:]); err != nil {
			return nil, fmt.Errorf("tunnel: read reply reason: %w", err)
		}
		reply.Reason = Reason(reason[0])
	}
	return reply, nil
}

// Append appends the encoded reply to b; a message longer than MaxMessage is
// cut at a rune boundary.
func (r *Reply) Append(b []byte) []byte {
	msg := r.Message
	for len(msg) > MaxMessage {
		_, size := utf8.DecodeLastRuneInString(msg)
		msg = msg[:len(msg)-size]
	}
	b = append(b, Version, byte(r.Status))
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, msg...)
	if r.Status == StatusTargetFailed {
		b = append(b, byte(r.Reason))
	}
	return b
}

// WriteTo writes the encoded reply to w in one call.
func (r *Reply) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.Append(nil))
	if err != nil {
		return int64(n), fmt.Errorf("tunnel: write reply: %w", err)
	}
	return int64(n), nil
}

// OK is the reply that accepts a stream.
func OK() *Reply { return &Reply{Status: StatusOK} }

// TargetFailed is the reply that serves a stream whose target failed.
func TargetFailed(reason Reason, message string) *Reply {
	return &Reply{Status: StatusTargetFailed, Reason: reason, Message: message}
}

// Refuse is a reply that declines a stream with a message for the user.
func Refuse(format string, args ...any) *Reply {
	return &Reply{Status: StatusRefused, Message: fmt.Sprintf(format, args...)}
}
