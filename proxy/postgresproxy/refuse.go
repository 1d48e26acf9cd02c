package postgresproxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATE codes pamd answers with.
const (
	codeCannotConnect     = "08001" // sqlclient_unable_to_establish_sqlconnection
	codeProtocolViolation = "08P01"
	codeAdminShutdown     = "57P01"
)

// AnswerWithError plays the server's part of the startup far enough to
// give the client msg as a FATAL error: it answers SSLRequest (with TLS
// when cert is given) and GSSENCRequest, reads the StartupMessage and
// replies with an ErrorResponse. Clients then show msg instead of a
// dropped connection.
func AnswerWithError(c net.Conn, cert *tls.Certificate, code, msg string) {
	conn, start, err := acceptClient(c, cert)
	if conn == nil || (err == nil && start.cancel != nil) {
		return
	}
	sendError(conn, code, msg)
}

// sendError writes a FATAL ErrorResponse.
func sendError(c net.Conn, code, msg string) error {
	out, err := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}).Encode(nil)
	if err != nil {
		return err
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = c.Write(out)
	return err
}
