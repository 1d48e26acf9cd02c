package mssqlproxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"github.com/microsoft/go-mssqldb/integratedauth/ntlm"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
)

// loginRefused is the server's answer to a LOGIN7 without LOGINACK.
type loginRefused struct {
	Number  int32
	Account string
	Text    string
}

func (e *loginRefused) Error() string {
	if e.Number == 18456 {
		return fmt.Sprintf("SQL Server refused the stored credentials of account %s (error 18456: %s); an administrator must update the account", e.Account, e.Text)
	}
	return fmt.Sprintf("SQL Server refused the login of account %s (error %d: %s)", e.Account, e.Number, e.Text)
}

// loginServer negotiates encryption with the server, logs in with the
// stored credential and the client's options, and returns the connection
// to relay on, the login reply to pass to the client and the database the
// login landed in.
func loginServer(raw net.Conn, d *tunnel.Descriptor, client *tds.Login7) (net.Conn, []byte, string, error) {
	raw.SetDeadline(time.Now().Add(LoginTimeout))
	defer raw.SetDeadline(time.Time{})
	conn, err := preloginServer(raw, d)
	if err != nil {
		return nil, nil, "", err
	}
	login := *client
	login.UserName, login.Password, login.SSPI, login.ChangePassword = "", "", nil, ""
	login.OptionFlags2 &^= tds.Flags2IntegratedSecurity
	login.ServerName, _, _ = net.SplitHostPort(d.Target)
	if login.Database == "" {
		login.Database = d.MSSQL.Database
	}
	if login.FeatureExt != nil {
		// Federated authentication is the client's own login; encrypted
		// columns and data classification change the token stream in ways
		// the query log cannot follow.
		if login.FeatureExt, err = tds.WithoutFeatures(login.FeatureExt,
			tds.FeatureFedAuth, tds.FeatureColumnEncryption, tds.FeatureDataClassification); err != nil {
			return nil, nil, "", fmt.Errorf("the client's LOGIN7: %w", err)
		}
	}
	var next func([]byte) ([]byte, error)
	switch d.MSSQL.Auth {
	case "", "sql":
		login.UserName, login.Password = d.MSSQL.Username, d.MSSQL.Password
	case "ntlm":
		a := &ntlm.Auth{Domain: d.MSSQL.Domain, UserName: d.MSSQL.Username, Password: d.MSSQL.Password, Workstation: client.HostName}
		if login.SSPI, err = a.InitialBytes(); err != nil {
			return nil, nil, "", fmt.Errorf("NTLM: %w", err)
		}
		next = a.NextBytes
	case "kerberos":
		if login.SSPI, err = kerberosToken(d); err != nil {
			return nil, nil, "", err
		}
	default:
		return nil, nil, "", fmt.Errorf("account %s has unknown auth %q", d.Account, d.MSSQL.Auth)
	}
	if login.SSPI != nil {
		login.OptionFlags2 |= tds.Flags2IntegratedSecurity
	}
	msg, err := login.Append(nil)
	if err != nil {
		return nil, nil, "", fmt.Errorf("the client's login options do not fit a LOGIN7: %w", err)
	}
	if err := tds.WriteMessage(conn, tds.TypeLogin7, msg, 4096); err != nil {
		return nil, nil, "", fmt.Errorf("send LOGIN7: %w", err)
	}
	for round := 0; round < 8; round++ {
		m, err := tds.ReadMessage(conn, 1<<20)
		if err != nil {
			return nil, nil, "", fmt.Errorf("the server's login reply: %w", err)
		}
		if m.Type != tds.TypeReply {
			return nil, nil, "", fmt.Errorf("%w: login reply of type %#x", tds.ErrMalformed, m.Type)
		}
		// Whatever the reply says goes to the client (ENVCHANGE, INFO,
		// ERROR texts): one that repeats a credential goes nowhere.
		if repeatsSecret(m.Payload, d) {
			return nil, nil, "", fmt.Errorf("the server's login reply repeats a credential of account %s; pamd does not pass it on", d.Account)
		}
		out, kept, sspi, err := tds.ReadReply(m.Payload, true)
		switch {
		case err != nil:
			return nil, nil, "", fmt.Errorf("the server's login reply: %w", err)
		case out.LoginAck:
			return conn, kept, out.Database, nil
		case len(out.Errors) > 0:
			e := out.Errors[0]
			return nil, nil, "", &loginRefused{Number: e.Number, Account: d.Account, Text: scrubText(e.Text, d)}
		case sspi != nil && next != nil:
			resp, err := next(sspi)
			if err != nil {
				return nil, nil, "", fmt.Errorf("NTLM: %w", err)
			}
			if err := tds.WriteMessage(conn, tds.TypeSSPI, resp, 4096); err != nil {
				return nil, nil, "", err
			}
			next = nil
		default:
			return nil, nil, "", errors.New("the server ended the login without accepting or refusing it")
		}
	}
	return nil, nil, "", errors.New("the server's login went on too long")
}

// repeatsSecret reports whether b holds one of d's credentials in any form
// a server could repeat it in (tds.SecretForms).
func repeatsSecret(b []byte, d *tunnel.Descriptor) bool {
	for _, secret := range d.Secrets() {
		if utf8.RuneCountInString(secret) < tunnel.MinScrub {
			continue
		}
		_, forms := tds.SecretForms(secret)
		for _, f := range forms {
			if bytes.Contains(b, f) {
				return true
			}
		}
	}
	return false
}

// scrubText removes d's credentials, in every form tds.SecretForms names,
// from a text that came from the server.
func scrubText(text string, d *tunnel.Descriptor) string {
	for _, secret := range d.Secrets() {
		forms, _ := tds.SecretForms(secret)
		text = tunnel.Scrub(text, forms...)
	}
	return text
}

// preloginServer sends PRELOGIN with the resource's encryption setting
// and, with TLS on, handshakes inside PRELOGIN packets.
func preloginServer(raw net.Conn, d *tunnel.Descriptor) (net.Conn, error) {
	want := byte(tds.EncryptNotSup)
	if d.MSSQL.TLS {
		want = tds.EncryptOn
	}
	pre := tds.Prelogin{
		tds.PreloginVersion:    {0, 1, 0, 0, 0, 0},
		tds.PreloginEncryption: {want},
		tds.PreloginInstOpt:    {0},
		tds.PreloginThreadID:   {0, 0, 0, 0},
		tds.PreloginMARS:       {0},
	}
	if err := tds.WriteMessage(raw, tds.TypePrelogin, pre.Append(nil), 4096); err != nil {
		return nil, fmt.Errorf("send PRELOGIN: %w", err)
	}
	m, err := tds.ReadMessage(raw, 4096)
	if err != nil {
		return nil, fmt.Errorf("the server's PRELOGIN reply: %w", err)
	}
	reply, err := tds.ParsePrelogin(m.Payload)
	if err != nil {
		return nil, fmt.Errorf("the server's PRELOGIN reply: %w", err)
	}
	got := reply.Encryption()
	switch {
	case d.MSSQL.TLS && got != tds.EncryptOn && got != tds.EncryptReq:
		return nil, fmt.Errorf("%s cannot encrypt (PRELOGIN answered %s) and resource %s requires TLS; give the server a certificate, or set --tls=false on the resource", d.Target, encryptionName(got), d.Resource)
	case !d.MSSQL.TLS && got != tds.EncryptNotSup:
		return nil, fmt.Errorf("%s requires encryption (PRELOGIN answered %s); set --tls=true on resource %s", d.Target, encryptionName(got), d.Resource)
	case !d.MSSQL.TLS:
		return raw, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: !d.MSSQL.TLSRejectUnauthorized}
	cfg.ServerName, _, _ = net.SplitHostPort(d.Target)
	if d.MSSQL.TLSCA != "" {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM([]byte(d.MSSQL.TLSCA)) {
			return nil, fmt.Errorf("resource %s: its TLS CA holds no PEM certificate", d.Resource)
		}
	}
	hc := tds.NewHandshakeConn(raw)
	tc := tls.Client(hc, tds.PreloginTLSConfig(cfg))
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS with %s: %w", d.Target, err)
	}
	hc.Done()
	return tc, nil
}

func encryptionName(b byte) string {
	switch b {
	case tds.EncryptOff:
		return "ENCRYPT_OFF"
	case tds.EncryptOn:
		return "ENCRYPT_ON"
	case tds.EncryptNotSup:
		return "ENCRYPT_NOT_SUP"
	case tds.EncryptReq:
		return "ENCRYPT_REQ"
	}
	return fmt.Sprintf("%#x", b)
}
