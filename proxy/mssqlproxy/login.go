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

// serverLogin is a login the server accepted.
type serverLogin struct {
	conn     net.Conn    // to relay on
	reply    []byte      // the login reply to pass to the client
	database string      // where the login landed
	version  tds.Version // the TDS version LOGINACK accepted, the replies' layout
	server   string      // the server's version, as its PRELOGIN says it
}

// loginServer negotiates encryption with the server, logs in with the
// stored credential and the client's options (its TDS version included:
// the server's replies go to the client as they are), and returns the
// accepted login.
func loginServer(raw net.Conn, d *tunnel.Descriptor, client *tds.Login7) (*serverLogin, error) {
	raw.SetDeadline(time.Now().Add(LoginTimeout))
	defer raw.SetDeadline(time.Time{})
	conn, version, err := preloginServer(raw, d)
	if err != nil {
		return nil, err
	}
	login := *client
	switch v := tds.Version(login.TDSVersion); {
	case d.MSSQL.TLSStrict && (v == tds.Version74 || v == tds.Version80):
		login.TDSVersion = uint32(tds.Version80)
	case !d.MSSQL.TLSStrict && v == tds.Version80:
		// The client's TDS 8.0 ends at pamd; toward a server that is not
		// strict the same tokens are TDS 7.4.
		login.TDSVersion = uint32(tds.Version74)
	}
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
			return nil, fmt.Errorf("the client's LOGIN7: %w", err)
		}
	}
	var next func([]byte) ([]byte, error)
	var mutual *apExchange // Kerberos: the AP-REP the server must send
	switch d.MSSQL.Auth {
	case "", "sql":
		login.UserName, login.Password = d.MSSQL.Username, d.MSSQL.Password
	case "ntlm":
		a := &ntlm.Auth{Domain: d.MSSQL.Domain, UserName: d.MSSQL.Username, Password: d.MSSQL.Password, Workstation: client.HostName}
		if login.SSPI, err = a.InitialBytes(); err != nil {
			return nil, fmt.Errorf("NTLM: %w", err)
		}
		next = a.NextBytes
	case "kerberos", "pkinit":
		if login.SSPI, mutual, err = kerberosToken(d); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("account %s has unknown auth %q", d.Account, d.MSSQL.Auth)
	}
	if login.SSPI != nil {
		login.OptionFlags2 |= tds.Flags2IntegratedSecurity
	}
	msg, err := login.Append(nil)
	if err != nil {
		return nil, fmt.Errorf("the client's login options do not fit a LOGIN7: %w", err)
	}
	if err := tds.WriteMessage(conn, tds.TypeLogin7, msg, 4096); err != nil {
		return nil, fmt.Errorf("send LOGIN7: %w", err)
	}
	for round := 0; round < 8; round++ {
		m, err := tds.ReadMessage(conn, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("the server's login reply: %w", err)
		}
		if m.Type != tds.TypeReply {
			return nil, fmt.Errorf("%w: login reply of type %#x", tds.ErrMalformed, m.Type)
		}
		// Whatever the reply says goes to the client (ENVCHANGE, INFO,
		// ERROR texts): one that repeats a credential goes nowhere.
		if repeatsSecret(m.Payload, d) {
			return nil, fmt.Errorf("the server's login reply repeats a credential of account %s; pamd does not pass it on", d.Account)
		}
		out, kept, sspi, err := tds.ReadReply(m.Payload, tds.Version(login.TDSVersion), true)
		if err != nil {
			return nil, fmt.Errorf("the server's login reply (TDS %v): %w", tds.Version(login.TDSVersion), err)
		}
		// Kerberos: the SSPI token (before LOGINACK, in this message or
		// one of its own) is the server's AP-REP, checked before anything
		// else of the reply counts; a refusal's own words win over it.
		verified := false
		if mutual != nil && sspi != nil && len(out.Errors) == 0 {
			if mutual.done {
				return nil, errors.New("Kerberos: the server sent a second SSPI token after its AP-REP")
			}
			if err := mutual.verify(sspi); err != nil {
				return nil, err
			}
			verified = true
		}
		switch {
		case out.LoginAck && mutual != nil && !mutual.done:
			return nil, mutual.missing()
		case out.LoginAck:
			return &serverLogin{conn: conn, reply: kept, database: out.Database, version: out.Version, server: version}, nil
		case len(out.Errors) > 0:
			e := out.Errors[0]
			return nil, &loginRefused{Number: e.Number, Account: d.Account, Text: scrubText(e.Text, d)}
		case verified: // the AP-REP came alone; LOGINACK follows
		case sspi != nil && next != nil:
			resp, err := next(sspi)
			if err != nil {
				return nil, fmt.Errorf("NTLM: %w", err)
			}
			if err := tds.WriteMessage(conn, tds.TypeSSPI, resp, 4096); err != nil {
				return nil, err
			}
			next = nil
		default:
			return nil, errors.New("the server ended the login without accepting or refusing it")
		}
	}
	return nil, errors.New("the server's login went on too long")
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
// and, with TLS on, handshakes inside PRELOGIN packets; toward a strict
// (TDS 8.0) server it handshakes first and sends PRELOGIN inside TLS.
func preloginServer(raw net.Conn, d *tunnel.Descriptor) (net.Conn, string, error) {
	want := byte(tds.EncryptNotSup)
	if d.MSSQL.TLS {
		want = tds.EncryptOn
	}
	var strict net.Conn
	if d.MSSQL.TLSStrict {
		cfg, err := serverTLSConfig(d)
		if err != nil {
			return nil, "", err
		}
		cfg.NextProtos, cfg.MinVersion = []string{strictALPN}, tls.VersionTLS12
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, "", fmt.Errorf("TLS with %s (TDS 8.0 strict encryption, resource setting tls_strict): %w", d.Target, err)
		}
		strict, raw, want = tc, tc, encryptStrict
	}
	pre := tds.Prelogin{
		tds.PreloginVersion:    {0, 1, 0, 0, 0, 0},
		tds.PreloginEncryption: {want},
		tds.PreloginInstOpt:    {0},
		tds.PreloginThreadID:   {0, 0, 0, 0},
		tds.PreloginMARS:       {0},
	}
	if err := tds.WriteMessage(raw, tds.TypePrelogin, pre.Append(nil), 4096); err != nil {
		return nil, "", fmt.Errorf("send PRELOGIN: %w", err)
	}
	m, err := tds.ReadMessage(raw, 4096)
	if err != nil {
		return nil, "", fmt.Errorf("the server's PRELOGIN reply: %w", err)
	}
	reply, err := tds.ParsePrelogin(m.Payload)
	if err != nil {
		return nil, "", fmt.Errorf("the server's PRELOGIN reply: %w", err)
	}
	version := serverVersion(reply)
	got := reply.Encryption()
	switch {
	case strict != nil: // encrypted already, whatever PRELOGIN says
		return strict, version, nil
	case d.MSSQL.TLS && got != tds.EncryptOn && got != tds.EncryptReq:
		return nil, "", fmt.Errorf("%s cannot encrypt (PRELOGIN answered %s) and resource %s requires TLS; give the server a certificate, or set --tls=false on the resource", d.Target, encryptionName(got), d.Resource)
	case !d.MSSQL.TLS && got != tds.EncryptNotSup:
		return nil, "", fmt.Errorf("%s requires encryption (PRELOGIN answered %s); set --tls=true on resource %s", d.Target, encryptionName(got), d.Resource)
	case !d.MSSQL.TLS:
		return raw, version, nil
	}
	cfg, err := serverTLSConfig(d)
	if err != nil {
		return nil, "", err
	}
	hc := tds.NewHandshakeConn(raw)
	tc := tls.Client(hc, tds.PreloginTLSConfig(cfg))
	if err := tc.Handshake(); err != nil {
		return nil, "", fmt.Errorf("TLS with %s: %w", d.Target, err)
	}
	hc.Done()
	return tc, version, nil
}

// serverVersion is the VERSION option of a server's PRELOGIN reply as
// SQL Server writes its own: major.minor.build.
func serverVersion(reply tds.Prelogin) string {
	v := reply[tds.PreloginVersion]
	if len(v) < 4 {
		return "unknown"
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], uint16(v[2])<<8|uint16(v[3]))
}

// encryptStrict is the ENCRYPTION value clients send in the PRELOGIN that
// follows a TDS 8.0 handshake (go-mssqldb and ODBC Driver 18 do).
const encryptStrict = 0x04

// serverTLSConfig is how the gateway checks the server's certificate.
func serverTLSConfig(d *tunnel.Descriptor) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: !d.MSSQL.TLSRejectUnauthorized}
	cfg.ServerName, _, _ = net.SplitHostPort(d.Target)
	if d.MSSQL.TLSCA != "" {
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM([]byte(d.MSSQL.TLSCA)) {
			return nil, fmt.Errorf("resource %s: its TLS CA holds no PEM certificate", d.Resource)
		}
	}
	return cfg, nil
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
	case encryptStrict:
		return "ENCRYPT_STRICT"
	}
	return fmt.Sprintf("%#x", b)
}
