package tds

import (
	"crypto/tls"
	"fmt"
	"net"
)

// HandshakeConn carries a TLS handshake the way TDS does (MS-TDS 2.2.6.5,
// 3.2.5.2): while handshaking, TLS records travel as the payload of
// PRELOGIN packets; once Done is called, bytes pass through unwrapped. Put
// crypto/tls over it, handshake, then call Done.
type HandshakeConn struct {
	net.Conn
	done bool
	rbuf []byte
}

// PreloginTLSConfig returns cfg for a handshake inside PRELOGIN: at most
// TLS 1.2, as SQL Server does for TDS 7.x. Clients stop wrapping records
// once their own side of the handshake is done; in TLS 1.3 the client's
// Finished is the last message, so FreeTDS sends it unwrapped and a TLS 1.3
// server waiting for a PRELOGIN packet never sees it. (TLS 1.3 belongs to
// TDS 8, where TLS comes before any TDS.)
func PreloginTLSConfig(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	c.MaxVersion = tls.VersionTLS12
	if c.MinVersion == 0 || c.MinVersion > tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// NewHandshakeConn wraps c for a TDS TLS handshake.
func NewHandshakeConn(c net.Conn) *HandshakeConn { return &HandshakeConn{Conn: c} }

// Done ends the wrapping: after the handshake, TLS records go raw.
func (h *HandshakeConn) Done() { h.done = true }

func (h *HandshakeConn) Read(p []byte) (int, error) {
	if h.done && len(h.rbuf) == 0 {
		return h.Conn.Read(p)
	}
	if len(h.rbuf) == 0 {
		pkt, err := ReadPacket(h.Conn)
		if err != nil {
			return 0, err
		}
		if pkt.Type != TypePrelogin && pkt.Type != TypeReply {
			return 0, fmt.Errorf("%w: packet type %#x during the TLS handshake", ErrMalformed, pkt.Type)
		}
		h.rbuf = pkt.Payload
	}
	n := copy(p, h.rbuf)
	h.rbuf = h.rbuf[n:]
	return n, nil
}

func (h *HandshakeConn) Write(p []byte) (int, error) {
	if h.done {
		return h.Conn.Write(p)
	}
	if err := WriteMessage(h.Conn, TypePrelogin, p, 4096); err != nil {
		return 0, err
	}
	return len(p), nil
}
