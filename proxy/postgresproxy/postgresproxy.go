package postgresproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/pgwire"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

const (
	// DialTimeout bounds reaching the server.
	DialTimeout = 10 * time.Second
	// LoginTimeout bounds each side's startup exchange.
	LoginTimeout = 30 * time.Second
)

// Handler is the gateway's postgres handler. It keeps the cancel keys it
// gave clients (cancel.go).
type Handler struct{ keys *keys }

// New returns a postgres handler.
func New() *Handler { return &Handler{keys: newKeys()} }

var errNoPart = errors.New("the descriptor has no postgres part (server and gateway versions differ?)")

// Probe reaches the server (with its TLS as the resource sets it) and,
// given an account, logs in and reports the server's version.
func (h *Handler) Probe(ctx context.Context, d *tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	if d.Postgres == nil {
		return nil, errNoPart
	}
	raw, err := dial(ctx, d)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	if d.Postgres.Username == "" {
		conn, err := serverTLS(raw, d)
		if err != nil {
			return nil, err
		}
		conn.Close()
		return &tunnel.ProbeResult{}, nil
	}
	s, err := loginServer(raw, d, nil)
	if err != nil {
		return nil, err
	}
	terminate, _ := (&pgproto3.Terminate{}).Encode(nil)
	s.conn.Write(terminate)
	s.conn.Close()
	return &tunnel.ProbeResult{Version: s.params["server_version"]}, nil
}

// Handle serves one dial stream of a postgres resource until either side
// ends or ctx (bounded by the session's expiry) is done.
func (h *Handler) Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, rec proxy.Recorder) error {
	if d.Postgres == nil {
		proxy.Answer(stream, proxy.Refuse("pamd gateway: %v", errNoPart))
		return errNoPart
	}
	cert, err := serverCertificate(d)
	if err != nil {
		proxy.Answer(stream, proxy.Refuse("pamd gateway: resource %s: %v", d.Resource, err))
		return err
	}
	l := &logger{d: d, rec: rec.Record, database: d.Postgres.Database}
	raw, err := dial(ctx, d)
	if err != nil {
		msg := "pamd: " + err.Error()
		proxy.Answer(stream, proxy.TargetFailed(tunnel.ReasonUnreachable, errors.New(msg)))
		l.error(msg)
		AnswerWithError(stream, cert, codeCannotConnect, msg)
		return err
	}
	defer raw.Close()
	if err := proxy.Answer(stream, nil); err != nil {
		return err
	}
	// The session's end cuts both sides, whatever they are doing; the
	// client is told why first (relay.go) once it is past the startup.
	stop := context.AfterFunc(ctx, func() { stream.Close(); raw.Close() })

	client, start, err := acceptClient(stream, cert)
	if err != nil {
		stop()
		if client != nil {
			msg := "pamd: " + err.Error()
			l.error(msg)
			sendError(client, codeProtocolViolation, msg)
		}
		return fmt.Errorf("client startup: %w", err)
	}
	if start.cancel != nil {
		stop()
		return h.keys.cancel(ctx, raw, d, start.cancel)
	}
	server, err := loginServer(raw, d, start.params)
	if err != nil {
		stop()
		msg := "pamd: " + scrub(err.Error(), d)
		l.error(msg)
		code := codeCannotConnect
		var refused *loginRefused
		if errors.As(err, &refused) {
			code = refused.code
		}
		sendError(client, code, msg)
		return err
	}
	key := h.keys.add(d, server.key)
	defer h.keys.remove(key)
	if err := greetClient(client, server, key); err != nil {
		stop()
		return err
	}
	stop()
	return relay(ctx, client, server, l)
}

// startup is what the client's first packets asked for: a session with
// parameters, or the cancel of another connection's query.
type startup struct {
	params map[string]string
	cancel *pgproto3.CancelRequest
}

// acceptClient answers the client's SSLRequest (TLS with cert when there
// is one) and GSSENCRequest (declined) and reads its StartupMessage or
// CancelRequest. A packet pamd will not serve comes with the connection to
// tell the client why.
func acceptClient(c net.Conn, cert *tls.Certificate) (net.Conn, *startup, error) {
	c.SetDeadline(time.Now().Add(LoginTimeout))
	defer c.SetDeadline(time.Time{})
	conn, tlsDone, gssDone := c, false, false
	for {
		body, err := pgwire.ReadStartup(conn)
		if err != nil {
			return nil, nil, err
		}
		switch code := pgwire.Code(body); {
		case code == pgwire.CodeSSL && !tlsDone:
			tlsDone = true
			if cert == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return nil, nil, err
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, nil, err
			}
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}})
			if err := tc.Handshake(); err != nil {
				return nil, nil, fmt.Errorf("TLS with the client: %w", err)
			}
			conn = tc
		case code == pgwire.CodeGSSENC && !gssDone && !tlsDone:
			gssDone = true
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
		case code == pgwire.CodeCancel:
			var cr pgproto3.CancelRequest
			if err := cr.Decode(body); err != nil {
				return nil, nil, err
			}
			return conn, &startup{cancel: &cr}, nil
		case code>>16 == 3:
			var sm pgproto3.StartupMessage
			if err := sm.Decode(body); err != nil {
				return conn, nil, fmt.Errorf("the client's StartupMessage: %w", err)
			}
			if r := sm.Parameters["replication"]; r != "" && r != "false" && r != "off" && r != "no" && r != "0" {
				return conn, nil, errors.New("replication connections are not served through pamd")
			}
			return conn, &startup{params: sm.Parameters}, nil
		default:
			return conn, nil, fmt.Errorf("the client sent startup code %d, which pamd does not serve (protocol 3.0 only)", code)
		}
	}
}

// greetClient tells the client it is in (authentication OK without a
// password) and passes on what the server said after its own login, with
// the server's key data replaced by pamd's.
func greetClient(c net.Conn, s *serverConn, key *pgproto3.BackendKeyData) error {
	out, _ := (&pgproto3.AuthenticationOk{}).Encode(nil)
	for _, m := range s.greeting {
		if m[0] == 'K' {
			if m, _ = key.Encode(nil); m == nil {
				continue
			}
		}
		out = append(out, m...)
	}
	c.SetWriteDeadline(time.Now().Add(LoginTimeout))
	defer c.SetWriteDeadline(time.Time{})
	_, err := c.Write(out)
	return err
}

// serverCertificate is the certificate clients asking for TLS see.
func serverCertificate(d *tunnel.Descriptor) (*tls.Certificate, error) {
	if d.Postgres.ServerTLSCert == "" {
		return nil, nil
	}
	cert, err := tls.X509KeyPair([]byte(d.Postgres.ServerTLSCert), []byte(d.Postgres.ServerTLSKey))
	if err != nil {
		return nil, fmt.Errorf("the certificate pamd shows clients does not load: %w", err)
	}
	return &cert, nil
}

// dial reaches the server.
func dial(ctx context.Context, d *tunnel.Descriptor) (net.Conn, error) {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raw, err := dialer.DialContext(dctx, "tcp", d.Target)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return nil, fmt.Errorf("the gateway cannot reach %s for resource %s: %v", d.Target, d.Resource, err)
	}
	return raw, nil
}

// scrub removes the account's credentials from a text for the client.
func scrub(s string, d *tunnel.Descriptor) string {
	return strings.TrimSpace(tunnel.Scrub(s, d.Secrets()...))
}
