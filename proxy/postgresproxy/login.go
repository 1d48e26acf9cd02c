package postgresproxy

import (
	"bufio"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"

	"github.com/pamd/pamd/protocol/pgwire"
	"github.com/pamd/pamd/protocol/tunnel"
)

// loginMax bounds a message of the server's during login.
const loginMax = 1 << 20

// serverConn is a connection logged in to the server.
type serverConn struct {
	conn   net.Conn
	br     *bufio.Reader
	params map[string]string // ParameterStatus as the login left them
	key    pgproto3.BackendKeyData
	// greeting is what the server sent after AuthenticationOk, up to and
	// including ReadyForQuery, as encoded messages.
	greeting [][]byte
}

// loginRefused is the server's ErrorResponse to the login.
type loginRefused struct {
	code, account, text string
}

func (e *loginRefused) Error() string {
	if e.code == "28P01" || e.code == "28000" {
		return fmt.Sprintf("PostgreSQL refused the stored credentials of account %s (SQLSTATE %s: %s); an administrator must update the account", e.account, e.code, e.text)
	}
	return fmt.Sprintf("PostgreSQL refused the login of account %s (SQLSTATE %s: %s)", e.account, e.code, e.text)
}

// serverTLS negotiates TLS with the server as the resource sets it: on
// (the default) it must be accepted and, unless verification is off,
// verified like sslmode=verify-full.
func serverTLS(raw net.Conn, d *tunnel.Descriptor) (net.Conn, error) {
	p := d.Postgres
	if !p.TLS {
		return raw, nil
	}
	raw.SetDeadline(time.Now().Add(LoginTimeout))
	defer raw.SetDeadline(time.Time{})
	req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	if _, err := raw.Write(req); err != nil {
		return nil, fmt.Errorf("send SSLRequest: %w", err)
	}
	var answer [1]byte // exactly one byte: nothing after it is read in clear
	if _, err := io.ReadFull(raw, answer[:]); err != nil {
		return nil, fmt.Errorf("the server's answer to SSLRequest: %w", err)
	}
	switch answer[0] {
	case 'S':
	case 'N':
		return nil, fmt.Errorf("the server at %s refuses TLS, and resource %s requires it (--tls=false allows clear text)", d.Target, d.Resource)
	default:
		return nil, fmt.Errorf("the server at %s answered SSLRequest with %q: not a PostgreSQL server?", d.Target, answer[0])
	}
	host, _, _ := net.SplitHostPort(d.Target)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: !p.TLSRejectUnauthorized}
	if p.TLSCA != "" {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM([]byte(p.TLSCA)) {
			return nil, errors.New("the resource's CA certificate does not load")
		}
	}
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS with the server at %s: %w", d.Target, err)
	}
	return tc, nil
}

// loginServer logs in to the server as the stored account, to the
// resource's database, with the client's other startup parameters.
func loginServer(raw net.Conn, d *tunnel.Descriptor, client map[string]string) (*serverConn, error) {
	conn, err := serverTLS(raw, d)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(LoginTimeout))
	defer conn.SetDeadline(time.Time{})
	p := d.Postgres
	params := map[string]string{}
	for k, v := range client {
		// Protocol extensions (_pq_.*) would need a negotiation pamd
		// does not follow.
		if !strings.HasPrefix(k, "_pq_.") {
			params[k] = v
		}
	}
	params["user"], params["database"] = p.Username, p.Database
	if params["database"] == "" {
		params["database"] = client["database"]
	}
	body, err := (&pgproto3.StartupMessage{ProtocolVersion: pgwire.Protocol3_0, Parameters: params}).Encode(nil)
	if err != nil {
		return nil, fmt.Errorf("the client's startup parameters do not fit a StartupMessage: %w", err)
	}
	if _, err := conn.Write(body); err != nil { // pgproto3 encodes the length
		return nil, fmt.Errorf("send StartupMessage: %w", err)
	}
	s := &serverConn{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), params: map[string]string{}}
	var conv *scram.ClientConversation
	authed := false
	for {
		typ, body, err := pgwire.ReadMessage(s.br, loginMax)
		if err != nil {
			return nil, fmt.Errorf("the server's login reply: %w", err)
		}
		switch typ {
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return nil, err
			}
			return nil, &loginRefused{code: e.Code, account: d.Account, text: e.Message}
		case 'R':
			if authed {
				return nil, errors.New("the server asked to authenticate again")
			}
			if len(body) < 4 {
				return nil, errors.New("the server sent a short authentication request")
			}
			var out []byte
			switch kind := binary.BigEndian.Uint32(body); kind {
			case 0:
				if conv != nil && !conv.Valid() {
					return nil, errors.New("the server accepted the login without proving it knows the password (SCRAM incomplete)")
				}
				authed = true
				continue
			case 3:
				if _, isTLS := conn.(*tls.Conn); !isTLS {
					return nil, errors.New("the server asks for the password in clear text on a connection without TLS; pamd does not send it (turn TLS on, or use scram-sha-256 in pg_hba.conf)")
				}
				out, _ = (&pgproto3.PasswordMessage{Password: p.Password}).Encode(nil)
			case 5:
				var m pgproto3.AuthenticationMD5Password
				if err := m.Decode(body); err != nil {
					return nil, err
				}
				out, _ = (&pgproto3.PasswordMessage{Password: md5Password(p.Username, p.Password, m.Salt)}).Encode(nil)
			case 10:
				var m pgproto3.AuthenticationSASL
				if err := m.Decode(body); err != nil {
					return nil, err
				}
				var mech, first string
				if conv, mech, err = startSCRAM(conn, p, m.AuthMechanisms); err != nil {
					return nil, err
				}
				if first, err = conv.Step(""); err != nil {
					return nil, fmt.Errorf("SCRAM: %w", err)
				}
				out, _ = (&pgproto3.SASLInitialResponse{AuthMechanism: mech, Data: []byte(first)}).Encode(nil)
			case 11, 12:
				if conv == nil {
					return nil, errors.New("the server continued a SCRAM exchange that had not begun")
				}
				reply, err := conv.Step(string(body[4:]))
				if err != nil {
					return nil, fmt.Errorf("SCRAM with the server: %w", err)
				}
				if kind == 12 {
					continue
				}
				out, _ = (&pgproto3.SASLResponse{Data: []byte(reply)}).Encode(nil)
			default:
				return nil, fmt.Errorf("the server asks for authentication method %d, which pamd does not support (use scram-sha-256, md5 or password in pg_hba.conf)", kind)
			}
			if _, err := conn.Write(out); err != nil {
				return nil, err
			}
		case 'S', 'K', 'N', 'Z':
			if !authed {
				return nil, fmt.Errorf("the server sent %q before authentication ended", typ)
			}
			msg, _ := pgwire.AppendMessage(nil, typ, body)
			switch typ {
			case 'S':
				var ps pgproto3.ParameterStatus
				if ps.Decode(body) == nil {
					s.params[ps.Name] = ps.Value
				}
			case 'K':
				if err := s.key.Decode(body); err != nil {
					return nil, err
				}
			}
			s.greeting = append(s.greeting, msg)
			if typ == 'Z' {
				return s, nil
			}
		case 'v': // NegotiateProtocolVersion: pamd sent no options to refuse
		default:
			return nil, fmt.Errorf("the server sent message %q during login", typ)
		}
	}
}

// startSCRAM picks the mechanism: SCRAM-SHA-256-PLUS bound to the TLS
// connection when the server offers it, else SCRAM-SHA-256 (saying, over
// TLS, that pamd could bind, so a stripped offer fails).
func startSCRAM(conn net.Conn, p *tunnel.PostgresTarget, mechs []string) (*scram.ClientConversation, string, error) {
	// The server takes the user from the StartupMessage, not from SCRAM,
	// and like it pamd prepares a password SASLprep refuses as it is.
	client, err := scram.SHA256.NewClient("", p.Password, "")
	if err != nil {
		if client, err = scram.SHA256.NewClientUnprepped("", p.Password, ""); err != nil {
			return nil, "", fmt.Errorf("SCRAM: the stored credential: %w", err)
		}
	}
	tc, isTLS := conn.(*tls.Conn)
	if isTLS && slices.Contains(mechs, "SCRAM-SHA-256-PLUS") {
		state := tc.ConnectionState()
		cb, err := scram.NewTLSServerEndpointBinding(&state)
		if err == nil {
			return client.NewConversationWithChannelBinding(cb), "SCRAM-SHA-256-PLUS", nil
		}
	}
	if !slices.Contains(mechs, "SCRAM-SHA-256") {
		return nil, "", fmt.Errorf("the server offers SASL mechanisms %v; pamd speaks SCRAM-SHA-256", mechs)
	}
	if isTLS {
		return client.NewConversationAdvertisingChannelBinding(), "SCRAM-SHA-256", nil
	}
	return client.NewConversation(), "SCRAM-SHA-256", nil
}

// md5Password is the answer to AuthenticationMD5Password:
// "md5" + md5hex(md5hex(password + user) + salt).
func md5Password(user, password string, salt [4]byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt[:]...))
	return "md5" + hex.EncodeToString(outer[:])
}
