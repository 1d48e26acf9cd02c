package mssqlproxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tds"
)

// SelfSignedCertificate makes a throwaway certificate for AnswerWithError
// where no resource certificate is at hand (pamd connect), so that clients
// requiring encryption still read the message when they trust the server
// certificate; nil if it cannot be made.
func SelfSignedCertificate() *tls.Certificate {
	key, err := pki.NewKey()
	if err != nil {
		return nil
	}
	der, err := pki.NewCA("pamd connect", key, 24*time.Hour)
	if err != nil {
		return nil
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// AnswerWithError plays a server's part of the login far enough to give
// the client msg as a login error: it answers PRELOGIN (with TLS when the
// client asks and cert is given), reads LOGIN7, and replies with an ERROR
// token. Clients then show msg instead of a dropped connection.
func AnswerWithError(c net.Conn, cert *tls.Certificate, msg string) {
	c.SetDeadline(time.Now().Add(LoginTimeout))
	m, err := tds.ReadMessage(c, 4096)
	if err != nil || m.Type != tds.TypePrelogin {
		return
	}
	pre, err := tds.ParsePrelogin(m.Payload)
	if err != nil {
		return
	}
	conn, err := answerPrelogin(c, pre.Encryption(), cert)
	if err != nil {
		return
	}
	if m, err = tds.ReadMessage(conn, 1<<20); err != nil || m.Type != tds.TypeLogin7 {
		return
	}
	sendError(conn, 50000, msg)
}

// sendError replies to a LOGIN7 with an ERROR token and a DONE.
func sendError(c net.Conn, number int32, msg string) error {
	class := byte(16)
	if number == 18456 {
		class = 14
	}
	out := tds.AppendMessage(nil, tds.TokenError, tds.ServerMessage{Number: number, State: 1, Class: class, Text: msg, ServerName: "pamd"})
	return tds.WriteMessage(c, tds.TypeReply, tds.AppendDone(out, tds.TokenDone, tds.DoneError, 0, 0), 4096)
}
