package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Packet types (MS-TDS 2.2.3.1.1).
const (
	TypeSQLBatch   = 0x01
	TypeRPC        = 0x03
	TypeReply      = 0x04 // tabular result
	TypeAttention  = 0x06
	TypeBulkLoad   = 0x07
	TypeFedAuth    = 0x08
	TypeTransMgr   = 0x0E
	TypeLogin7     = 0x10
	TypeSSPI       = 0x11
	TypePrelogin   = 0x12
	StatusEOM      = 0x01
	StatusIgnore   = 0x02
	StatusResetCon = 0x08
)

// HeaderLen is the size of a packet header.
const HeaderLen = 8

// MaxPacket is the largest packet TDS allows (the negotiated packet size is
// at most 32767).
const MaxPacket = 32767

// MaxMessage bounds a reassembled message: larger than any batch pamd
// passes whole (batches are relayed packet by packet; this is for login).
const MaxMessage = 64 << 20

var (
	ErrLength    = errors.New("tds: length out of range")
	ErrMalformed = errors.New("tds: malformed message")
)

// Header is a packet header.
type Header struct {
	Type     byte
	Status   byte
	Length   uint16 // including the header
	SPID     uint16
	PacketID byte
	Window   byte
}

// Packet is one packet: its header and payload.
type Packet struct {
	Header
	Payload []byte
}

// ReadPacket reads one packet from r.
func ReadPacket(r io.Reader) (*Packet, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("tds: read packet header: %w", err)
	}
	p := &Packet{Header: Header{
		Type: h[0], Status: h[1], Length: binary.BigEndian.Uint16(h[2:]),
		SPID: binary.BigEndian.Uint16(h[4:]), PacketID: h[6], Window: h[7],
	}}
	if p.Length < HeaderLen || p.Length > MaxPacket {
		return nil, fmt.Errorf("%w: packet length %d", ErrLength, p.Length)
	}
	p.Payload = make([]byte, int(p.Length)-HeaderLen)
	if _, err := io.ReadFull(r, p.Payload); err != nil {
		return nil, fmt.Errorf("tds: read packet payload: %w", err)
	}
	return p, nil
}

// Append encodes the packet onto b, setting its length from the payload.
func (p *Packet) Append(b []byte) []byte {
	b = append(b, p.Type, p.Status)
	b = binary.BigEndian.AppendUint16(b, uint16(HeaderLen+len(p.Payload)))
	b = binary.BigEndian.AppendUint16(b, p.SPID)
	b = append(b, p.PacketID, p.Window)
	return append(b, p.Payload...)
}

// Message is a reassembled message.
type Message struct {
	Type    byte
	Status  byte // of the last packet
	Payload []byte
}

// ReadMessage reads packets until one ends the message, refusing a message
// whose packets change type or that grows past max bytes.
func ReadMessage(r io.Reader, max int) (*Message, error) {
	if max <= 0 || max > MaxMessage {
		max = MaxMessage
	}
	var m *Message
	for {
		p, err := ReadPacket(r)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = &Message{Type: p.Type}
		} else if p.Type != m.Type {
			return nil, fmt.Errorf("%w: packet of type %#x inside a message of type %#x", ErrMalformed, p.Type, m.Type)
		}
		if len(m.Payload)+len(p.Payload) > max {
			return nil, fmt.Errorf("%w: message over %d bytes", ErrLength, max)
		}
		m.Payload = append(m.Payload, p.Payload...)
		m.Status = p.Status
		if p.Status&StatusEOM != 0 {
			return m, nil
		}
	}
}

// WriteMessage writes payload as packets of at most packetSize bytes, the
// last one marked end-of-message.
func WriteMessage(w io.Writer, typ byte, payload []byte, packetSize int) error {
	if packetSize <= HeaderLen || packetSize > MaxPacket {
		packetSize = 4096
	}
	chunk := packetSize - HeaderLen
	var id byte = 1
	var buf []byte
	for first := true; first || len(payload) > 0; first = false {
		n := min(chunk, len(payload))
		p := Packet{Header: Header{Type: typ, PacketID: id}, Payload: payload[:n]}
		payload = payload[n:]
		if len(payload) == 0 {
			p.Status = StatusEOM
		}
		buf = p.Append(buf[:0])
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("tds: write packet: %w", err)
		}
		id++
	}
	return nil
}
