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
// the client msg as a login error: it answers TLS first (TDS 8.0, when cert
// is given), PRELOGIN (with TLS when the client asks and cert is given) or
// LOGIN7 alone, reads LOGIN7, and replies with an ERROR token. Clients then
// show msg instead of a dropped connection.
func AnswerWithError(c net.Conn, cert *tls.Certificate, msg string) {
	c.SetDeadline(time.Now().Add(LoginTimeout))
	g, _ := greet(c, cert)
	if g.conn != nil {
		sendError(g.conn, g.version(), 50000, msg)
	}
}

// sendError replies to a LOGIN7 with an ERROR token and a DONE, in the
// layout of the client's TDS version v.
func sendError(c net.Conn, v tds.Version, number int32, msg string) error {
	class := byte(16)
	if number == 18456 {
		class = 14
	}
	if r := []rune(msg); len(r) > maxRefusal {
		msg = string(r[:maxRefusal-1]) + "…"
	}
	tk := &tds.Tokens{V: v}
	out, err := tk.Message(tds.TokenError, tds.ServerMessage{Number: number, State: 1, Class: class, Text: msg, ServerName: "pamd"}).
		Done(tds.TokenDone, tds.DoneError, 0, 0).Bytes()
	if err != nil {
		return err
	}
	return tds.WriteMessage(c, tds.TypeReply, out, 4096)
}

// maxRefusal bounds the text of a refusal (a server's words can be long);
// it stays well inside an ERROR token.
const maxRefusal = 4000
