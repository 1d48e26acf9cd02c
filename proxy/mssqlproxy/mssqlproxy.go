package mssqlproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

const (
	// DialTimeout bounds reaching the server.
	DialTimeout = 10 * time.Second
	// LoginTimeout bounds each side's login exchange.
	LoginTimeout = 30 * time.Second
)

// Handler is the gateway's mssql handler: it serves dial streams and
// rotates SQL logins' passwords.
type Handler struct {
	// Certify has the server sign db-client certificates for accounts
	// with auth pkinit (windows.go); nil: such accounts cannot log in.
	Certify Certifier
}

var errNoPart = errors.New("the descriptor has no mssql part (server and gateway versions differ?)")

// Rotation changes a SQL login's password with ALTER LOGIN (ChangePassword).
func (Handler) Rotation(r *tunnel.Rotation) (*proxy.TargetOps, error) {
	if r.Account.MSSQL == nil || (r.With != nil && r.With.MSSQL == nil) {
		return nil, errNoPart
	}
	next := r.Account
	part := *next.MSSQL
	part.Password = r.NewPassword
	next.MSSQL = &part
	return &proxy.TargetOps{Login: Login, Change: ChangePassword, Next: &next}, nil
}

// Handle serves one dial stream of an mssql resource until either side
// ends or ctx (bounded by the session's expiry) is done.
func (h Handler) Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, rec proxy.Recorder) error {
	if d.MSSQL == nil {
		proxy.Answer(stream, proxy.Refuse("pamd gateway: %v", errNoPart))
		return errNoPart
	}
	defer windows.bind(d.SessionID, h.Certify)()
	cert, err := serverCertificate(d)
	if err != nil {
		proxy.Answer(stream, proxy.Refuse("pamd gateway: resource %s: %v", d.Resource, err))
		return err
	}
	l := &logger{d: d, rec: rec.Record}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	raw, err := dialer.DialContext(dctx, "tcp", d.Target)
	cancel()
	if err != nil {
		msg := fmt.Sprintf("pamd: the gateway cannot reach %s for resource %s: %v", d.Target, d.Resource, unwrapDial(err))
		proxy.Answer(stream, proxy.TargetFailed(tunnel.ReasonUnreachable, errors.New(msg)))
		l.error(msg)
		AnswerWithError(stream, cert, msg)
		return err
	}
	defer raw.Close()
	if err := proxy.Answer(stream, nil); err != nil {
		return err
	}
	// The session's end cuts both sides, whatever they are doing.
	stop := context.AfterFunc(ctx, func() { stream.Close(); raw.Close() })
	defer stop()

	g, login, err := acceptClient(stream, cert)
	if err != nil {
		msg := "pamd: " + err.Error()
		l.error(msg)
		if g.conn != nil { // say why in the client's own protocol
			sendError(g.conn, g.version(), 50000, msg)
		}
		return fmt.Errorf("client login: %w", err)
	}
	client := g.conn
	srv, err := loginServer(raw, d, login)
	if err != nil {
		// What pamd says may quote the server: no credential leaves.
		msg := "pamd: " + scrubText(err.Error(), d)
		l.error(msg)
		var refused *loginRefused
		number := int32(50000)
		if errors.As(err, &refused) {
			number = refused.Number
		}
		sendError(client, g.version(), number, msg)
		return err
	}
	if err := tds.WriteMessage(client, tds.TypeReply, srv.reply, 4096); err != nil {
		return err
	}
	server, database := srv.conn, srv.database
	l.version = srv.version
	l.database = database
	return relay(ctx, client, server, l)
}

// answerPrelogin replies as a server that encrypts only when the client
// asks for it (ON or REQ); login-only encryption would protect nothing the
// tunnel does not. It returns the connection to go on with.
func answerPrelogin(c net.Conn, clientWants byte, cert *tls.Certificate) (net.Conn, error) {
	mode := byte(tds.EncryptNotSup)
	if (clientWants == tds.EncryptOn || clientWants == tds.EncryptReq) && cert != nil {
		mode = tds.EncryptOn
	}
	reply := tds.Prelogin{
		tds.PreloginVersion:    {16, 0, 0x10, 0x7B, 0, 0},
		tds.PreloginEncryption: {mode},
		tds.PreloginInstOpt:    {0},
		tds.PreloginThreadID:   {},
		tds.PreloginMARS:       {0}, // MARS is not offered
	}
	if err := tds.WriteMessage(c, tds.TypeReply, reply.Append(nil), 4096); err != nil {
		return nil, err
	}
	if mode == tds.EncryptNotSup {
		return c, nil
	}
	hc := tds.NewHandshakeConn(c)
	tc := tls.Server(hc, tds.PreloginTLSConfig(&tls.Config{Certificates: []tls.Certificate{*cert}}))
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS with the client: %w", err)
	}
	hc.Done()
	return tc, nil
}

// serverCertificate is the certificate clients asking for TLS see.
func serverCertificate(d *tunnel.Descriptor) (*tls.Certificate, error) {
	if d.MSSQL.ServerTLSCert == "" {
		return nil, nil
	}
	cert, err := tls.X509KeyPair([]byte(d.MSSQL.ServerTLSCert), []byte(d.MSSQL.ServerTLSKey))
	if err != nil {
		return nil, fmt.Errorf("the certificate pamd shows clients does not load: %w", err)
	}
	return &cert, nil
}

// unwrapDial drops the "dial tcp" layers so the user reads the cause.
func unwrapDial(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
