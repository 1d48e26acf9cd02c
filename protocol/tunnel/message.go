package tunnel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Message types on a control stream.
const (
	// MsgEnd, connect → server: the user ended the session.
	// MsgEnded, server → connect: the session is over; Reason says why.
	MsgEnd   = "end"
	MsgEnded = "ended"
	// MsgProbeResult, gateway → server: the answer to a probe.
	MsgProbeResult = "probe_result"
	// MsgRotationResult, gateway → server: the answer to a rotation.
	MsgRotationResult = "rotation_result"
	// MsgCertificate, server → gateway: the answer to a renewal, whose
	// detail is a RenewalResult.
	MsgCertificate = "certificate"
	// MsgRecords, gateway → server: a batch of Records; MsgAck, server →
	// gateway: every record up to Detail's seq is stored; MsgRefused,
	// server → gateway: the batch was not stored (Reason says why) and the
	// server closes the stream. MsgBacklog, gateway → server: what its
	// spool still holds (Detail is a Backlog); not answered.
	MsgRecords = "records"
	MsgAck     = "ack"
	MsgRefused = "refused"
	MsgBacklog = "backlog"
)

// MaxMessageBody bounds one message, a batch of records at most.
const MaxMessageBody = 1 << 20

// Message is one framed JSON object on a control or probe stream.
type Message struct {
	Type   string `json:"type"`
	Reason string `json:"reason,omitempty"`
	// Detail carries a type-specific payload, for example a probe's findings.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// ReadMessage reads one message from r.
func ReadMessage(r io.Reader) (*Message, error) {
	var fixed [4]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("tunnel: read message: %w", err)
	}
	n := binary.BigEndian.Uint32(fixed[:])
	if n < 2 || n > MaxMessageBody {
		return nil, fmt.Errorf("tunnel: message of %d bytes: %w", n, ErrTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("tunnel: read message body: %w", err)
	}
	var m Message
	if body[0] != '{' || json.Unmarshal(body, &m) != nil {
		return nil, ErrBadBody
	}
	return &m, nil
}

// Append appends the encoded message to b.
func (m *Message) Append(b []byte) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return b, fmt.Errorf("tunnel: encode message: %w", err)
	}
	if len(body) > MaxMessageBody {
		return b, fmt.Errorf("tunnel: encode message: %d bytes: %w", len(body), ErrTooLarge)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...), nil
}

// WriteTo writes the encoded message to w in one call.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	b, err := m.Append(nil)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	if err != nil {
		return int64(n), fmt.Errorf("tunnel: write message: %w", err)
	}
	return int64(n), nil
}
