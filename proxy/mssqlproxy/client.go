package mssqlproxy

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pamd/pamd/protocol/tds"
)

// tlsRecordHandshake is the first byte of a TLS ClientHello. No TDS packet
// type has this value, so it tells a TDS 8.0 client (TLS before PRELOGIN)
// from one that starts with PRELOGIN or LOGIN7.
const tlsRecordHandshake = 0x16

// greeting is how far a client got before pamd answers its LOGIN7.
type greeting struct {
	// conn is where to answer the client: TLS when it negotiated TLS, nil
	// when nothing can reach it any more (a TLS handshake that failed).
	conn net.Conn
	// login is the LOGIN7 payload, nil when the client sent none.
	login []byte
	// strict: the client spoke TDS 8.0 (TLS first, ALPN tds/8.0).
	strict bool
}

// version is the layout the client reads its login reply in: its LOGIN7's
// version, or 7.4 when there is none.
func (g *greeting) version() tds.Version {
	if len(g.login) >= 8 {
		return tds.Version(binary.LittleEndian.Uint32(g.login[4:]))
	}
	return tds.Version74
}

// greet plays the server's part up to the client's LOGIN7 in each way SQL
// Server allows: TLS first (TDS 8.0 strict encryption), then PRELOGIN and
// LOGIN7 inside it; PRELOGIN (with TLS inside it when the client asks for
// encryption), then LOGIN7; or LOGIN7 alone (jTDS with ssl=off), which
// leaves the connection in the clear. On an error the greeting still holds
// what is needed to tell the client why.
func greet(c net.Conn, cert *tls.Certificate) (*greeting, error) {
	g := &greeting{conn: c}
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		g.conn = nil
		return g, fmt.Errorf("tds: read the first packet: %w", err)
	}
	c = &prefixConn{Conn: c, prefix: first[:]}
	g.conn = c
	if first[0] == tlsRecordHandshake {
		if cert == nil {
			g.conn = nil
			return g, fmt.Errorf("the client starts with TLS (TDS 8.0 strict encryption) and pamd has no certificate for this resource")
		}
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{strictALPN}, MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			g.conn = nil
			return g, fmt.Errorf("TLS with the client (TDS 8.0 strict encryption): %w", err)
		}
		c, g.conn, g.strict = tc, tc, true
	}
	m, err := tds.ReadMessage(c, 1<<20)
	if err != nil {
		return g, err
	}
	switch m.Type {
	case tds.TypeLogin7:
		g.login = m.Payload // no PRELOGIN: no encryption toward the client
		return g, emptyLogin(m)
	case tds.TypePrelogin:
	default:
		return g, fmt.Errorf("%w: the client began with message type %#x, not PRELOGIN or LOGIN7", tds.ErrMalformed, m.Type)
	}
	pre, preErr := tds.ParsePrelogin(m.Payload)
	wants := byte(tds.EncryptNotSup)
	if preErr == nil && !g.strict { // under TDS 8.0 the connection is encrypted already
		wants = pre.Encryption()
	}
	conn, err := answerPrelogin(c, wants, cert)
	if err != nil {
		g.conn = nil
		return g, err
	}
	g.conn = conn
	if m, err = tds.ReadMessage(conn, 1<<20); err != nil {
		return g, err
	}
	if m.Type != tds.TypeLogin7 {
		return g, fmt.Errorf("%w: message type %#x instead of LOGIN7", tds.ErrMalformed, m.Type)
	}
	g.login = m.Payload
	if preErr != nil {
		return g, fmt.Errorf("the client's PRELOGIN: %w", preErr)
	}
	return g, emptyLogin(m)
}

// emptyLogin refuses a LOGIN7 message without content.
func emptyLogin(m *tds.Message) error {
	if len(m.Payload) == 0 {
		return fmt.Errorf("%w: an empty LOGIN7", tds.ErrMalformed)
	}
	return nil
}

// strictALPN is the application protocol of TDS 8.0's TLS handshake.
const strictALPN = "tds/8.0"

// acceptClient greets the client and parses its LOGIN7. The greeting comes
// back with the error when the client can still be told why.
func acceptClient(c net.Conn, cert *tls.Certificate) (*greeting, *tds.Login7, error) {
	c.SetDeadline(time.Now().Add(LoginTimeout))
	defer c.SetDeadline(time.Time{})
	g, err := greet(c, cert)
	if err != nil {
		return g, nil, err
	}
	login, err := tds.ParseLogin7(g.login)
	if err != nil {
		return g, nil, fmt.Errorf("the client's LOGIN7 was refused: %w", err)
	}
	return g, login, nil
}

// prefixConn reads prefix before the connection's own bytes.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
