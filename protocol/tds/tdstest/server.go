package tdstest

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pamd/pamd/protocol/ntlm"
	"github.com/pamd/pamd/protocol/tds"
)

// Version is what the stand-in says it is in @@VERSION. It speaks TDS 7.0
// to 7.4 and TDS 8.0 (Strict), each version's tokens in that version's
// layout, and accepts LOGIN7 without PRELOGIN as SQL Server does.
const Version = "pamd TDS stand-in 16.0 (speaks MS-TDS 7.0 to 7.4 and 8.0)"

// ALPN is the application protocol a TDS 8.0 TLS handshake names.
const ALPN = "tds/8.0"

// Server is a running stand-in.
type Server struct {
	Addr string
	// Logins are the SQL logins and their passwords; ALTER LOGIN changes them.
	Logins map[string]string
	// Sysadmins may change any login's password without its old one (they
	// hold ALTER ANY LOGIN); others change only their own, giving the old.
	Sysadmins map[string]bool
	// CheckPolicy refuses new passwords that Windows' complexity rules
	// refuse (SQL Server's CHECK_POLICY): at least 8 characters from three
	// of upper case, lower case, digits and symbols.
	CheckPolicy bool
	// Encryption is what the server offers in PRELOGIN, as SQL Server does:
	// EncryptNotSup (no TLS), EncryptOff (TLS for the login; the client may
	// ask for more), EncryptOn or EncryptReq (TLS for the whole connection).
	// TLS is the certificate configuration for the last three.
	Encryption byte
	TLS        *tls.Config
	// Strict is TDS 8.0 (strict encryption): TLS comes first, before
	// PRELOGIN, with ALPN tds/8.0, and a client that starts in the clear
	// is dropped.
	Strict bool
	// Windows are the domain accounts ("DOMAIN\user" to password) that log
	// in with NTLMv2 through SSPI.
	Windows map[string]string
	// Keytab, when set, lets Kerberos logins in: the service ticket in the
	// SSPI token (SPNEGO or a raw krb5 GSS token) is checked against it.
	Keytab *keytab.Keytab
	// APRep is how an AP-REQ that requires mutual authentication is
	// answered: by default with an AP-REP in an SSPI token before
	// LOGINACK, as SQL Server does (aprep.go).
	APRep APRepMode

	mu        sync.Mutex
	ln        net.Listener
	seen      []*tds.Login7 // what clients sent, for tests
	prelogins int           // connections that sent PRELOGIN
	alpn      []string      // the ALPN each strict connection agreed on
	batches   []string
	apreqs    []APReqSeen
}

// APReqSeen is what a verified Kerberos AP-REQ asked for.
type APReqSeen struct {
	MutualRequired bool   // the AP option mutual-required
	GSSFlags       uint32 // the flags of the authenticator's GSS checksum (0x8003), 0 without one
	APRepSent      bool
}

// APReqs returns the verified Kerberos AP-REQs so far.
func (s *Server) APReqs() []APReqSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]APReqSeen(nil), s.apreqs...)
}

// Start listens on a loopback port without encryption.
func Start(logins map[string]string) (*Server, error) {
	return StartTLS(logins, tds.EncryptNotSup, nil)
}

// StartTLS listens on a loopback port offering encryption as given.
func StartTLS(logins map[string]string, encryption byte, cfg *tls.Config) (*Server, error) {
	if encryption != tds.EncryptNotSup && cfg == nil {
		return nil, errors.New("tdstest: encryption needs a TLS configuration")
	}
	if cfg != nil {
		cfg = tds.PreloginTLSConfig(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), Logins: logins, Encryption: encryption, TLS: cfg, ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s, nil
}

// StartStrict listens on a loopback port speaking TDS 8.0: TLS before
// anything else, any TLS version from 1.2 (1.3 included).
func StartStrict(logins map[string]string, cfg *tls.Config) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("tdstest: strict encryption needs a TLS configuration")
	}
	s, err := Start(logins)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{ALPN}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	s.mu.Lock()
	s.TLS, s.Strict = cfg, true
	s.mu.Unlock()
	return s, nil
}

// Close stops listening.
func (s *Server) Close() error { return s.ln.Close() }

// LoginsSeen returns the LOGIN7 messages received so far.
func (s *Server) LoginsSeen() []*tds.Login7 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*tds.Login7(nil), s.seen...)
}

// Prelogins counts the connections that began with PRELOGIN (the others
// sent LOGIN7 first).
func (s *Server) Prelogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prelogins
}

// ALPN returns the application protocol of each strict connection.
func (s *Server) ALPN() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.alpn...)
}

// Batches returns the SQL batch texts received so far.
func (s *Server) Batches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.batches...)
}

type conn struct {
	net.Conn
	s          *Server
	packetSize int
	database   string
	user       string           // the SQL login, empty for Windows logins
	doneToken  byte             // DONE, or DONEINPROC inside a procedure call
	v          tds.Version      // the version the login was answered at
	prepared   map[int32]string // sp_prepare handles
	paramDefs  map[int32]string // and their parameter definitions
}

func (s *Server) serve(nc net.Conn) {
	defer nc.Close()
	c := &conn{Conn: nc, s: s, packetSize: 4096, database: "master", doneToken: tds.TokenDone, prepared: map[int32]string{}, paramDefs: map[int32]string{}, v: tds.Version74}
	s.mu.Lock()
	strict, encryption, cfg := s.Strict, s.Encryption, s.TLS
	s.mu.Unlock()
	if strict { // TDS 8.0: TLS first, then every TDS message inside it
		tc := tls.Server(nc, cfg)
		if tc.Handshake() != nil {
			return
		}
		s.mu.Lock()
		s.alpn = append(s.alpn, tc.ConnectionState().NegotiatedProtocol)
		s.mu.Unlock()
		nc, c.Conn = tc, tc
	}
	m, err := tds.ReadMessage(c, 1<<20)
	if err != nil {
		return
	}
	mode := byte(tds.EncryptNotSup)
	if m.Type == tds.TypePrelogin {
		s.mu.Lock()
		s.prelogins++
		s.mu.Unlock()
		pre, err := tds.ParsePrelogin(m.Payload)
		if err != nil {
			return
		}
		if !strict { // under TDS 8.0 the connection is encrypted already
			mode = negotiate(encryption, pre.Encryption())
		}
		reply := tds.Prelogin{
			tds.PreloginVersion:    {16, 0, 0x10, 0x7B, 0, 0},
			tds.PreloginEncryption: {mode},
			tds.PreloginInstOpt:    {0},
			tds.PreloginThreadID:   {},
			tds.PreloginMARS:       {0},
		}
		if c.send(reply.Append(nil)) != nil {
			return
		}
		if mode == tds.EncryptReq && pre.Encryption() == tds.EncryptNotSup {
			return // the server requires encryption the client cannot do
		}
		if mode != tds.EncryptNotSup {
			hc := tds.NewHandshakeConn(nc)
			tc := tls.Server(hc, cfg)
			if tc.Handshake() != nil {
				return
			}
			hc.Done()
			c.Conn = tc // the login, and with ON/REQ everything after it
		}
		if m, err = tds.ReadMessage(c, 1<<20); err != nil {
			return
		}
	}
	// Without PRELOGIN, SQL Server takes LOGIN7 as the first message, and
	// the connection stays in the clear.
	if m.Type != tds.TypeLogin7 {
		return
	}
	login, err := tds.ParseLogin7(m.Payload)
	if err != nil {
		return
	}
	c.v = tds.Version(login.TDSVersion).Answer()
	if mode == tds.EncryptOff {
		c.Conn = nc // login-only encryption: the rest is in the clear
	}
	if !strict && mode == tds.EncryptNotSup && encryption == tds.EncryptReq {
		c.fail(tds.TokenDone, 18456, 1, 14, "pamd stand-in: this server requires encryption and the client did not negotiate it")
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, login)
	want, known := s.Logins[login.UserName]
	s.mu.Unlock()
	var sspi []byte // the server's last SSPI step, sent before LOGINACK
	switch {
	case login.OptionFlags2&tds.Flags2IntegratedSecurity != 0:
		who, reply, ok := c.integrated(login)
		if !ok {
			c.loginFailed(who)
			return
		}
		sspi = reply
	case !known || want != login.Password || login.UserName == "":
		c.loginFailed(login.UserName)
		return
	}
	if login.OptionFlags2&tds.Flags2IntegratedSecurity == 0 {
		c.user = login.UserName
	}
	if login.Database != "" {
		c.database = login.Database
	}
	if login.PacketSize >= 512 && login.PacketSize <= tds.MaxPacket {
		c.packetSize = int(login.PacketSize)
	}
	tk := &tds.Tokens{V: c.v}
	if sspi != nil {
		tk.SSPI(sspi)
	}
	tk.EnvChange(tds.EnvDatabase, c.database, "master").
		Message(tds.TokenInfo, tds.ServerMessage{Number: 5701, State: 2, Class: 0,
			Text: "Changed database context to '" + c.database + "'.", ServerName: "pamd-standin"}).
		CollationChange().
		LoginAck("Microsoft SQL Server", 16, 0, 4123).
		EnvChange(tds.EnvPacketSize, strconv.Itoa(c.packetSize), "4096").
		Done(tds.TokenDone, tds.DoneFinal, 0, 0)
	if c.sendTokens(tk) != nil {
		return
	}
	for {
		m, err := tds.ReadMessage(c, 64<<20)
		if err != nil {
			return
		}
		switch m.Type {
		case tds.TypeSQLBatch:
			text, err := tds.BatchText(m.Payload)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.batches = append(s.batches, text)
			s.mu.Unlock()
			if c.sendTokens(c.batch(text)) != nil {
				return
			}
		case tds.TypeRPC:
			calls, err := tds.ParseRPC(m.Payload, 1<<20)
			if err != nil {
				return
			}
			if c.sendTokens(c.rpc(calls)) != nil {
				return
			}
		case tds.TypeAttention:
			if c.sendTokens((&tds.Tokens{V: c.v}).Done(tds.TokenDone, tds.DoneAttn, 0, 0)) != nil {
				return
			}
		default:
			if c.fail(tds.TokenDone, 50000, 1, 16, fmt.Sprintf("pamd stand-in: message type %#x is not supported yet", m.Type)) != nil {
				return
			}
		}
	}
}

// negotiate applies MS-TDS's encryption table (2.2.6.5) from the server's
// side: what the server offers, met with what the client sent.
func negotiate(server, client byte) byte {
	switch server {
	case tds.EncryptNotSup:
		return tds.EncryptNotSup
	case tds.EncryptOff:
		switch client {
		case tds.EncryptNotSup:
			return tds.EncryptNotSup
		case tds.EncryptOff:
			return tds.EncryptOff
		}
		return tds.EncryptOn
	}
	if client == tds.EncryptNotSup {
		return tds.EncryptReq
	}
	return tds.EncryptOn
}

func (c *conn) loginFailed(user string) {
	c.fail(tds.TokenDone, 18456, 1, 14, fmt.Sprintf("Login failed for user '%s'.", user))
}

// fail answers with one ERROR token and a DONE with the error bit.
func (c *conn) fail(done byte, number int32, state, class byte, text string) error {
	tk := &tds.Tokens{V: c.v}
	tk.Message(tds.TokenError, tds.ServerMessage{Number: number, State: state, Class: class, Text: text, ServerName: "pamd-standin"}).
		Done(done, tds.DoneError, 0, 0)
	return c.sendTokens(tk)
}

// integrated runs an SSPI login: NTLM's NEGOTIATE in LOGIN7, the server's
// CHALLENGE in an SSPI token, the client's AUTHENTICATE in an SSPI message;
// or Kerberos in one round. It returns the SSPI token that goes before
// LOGINACK (Kerberos' AP-REP), if any.
func (c *conn) integrated(login *tds.Login7) (string, []byte, bool) {
	if ntlm.MessageType(login.SSPI) != ntlm.TypeNegotiate {
		return c.kerberos(login.SSPI)
	}
	var challenge [8]byte
	rand.Read(challenge[:])
	if c.sendTokens((&tds.Tokens{V: c.v}).SSPI(ntlm.Challenge(challenge, "EXAMPLE", "STANDIN", time.Now()))) != nil {
		return "", nil, false
	}
	m, err := tds.ReadMessage(c, 1<<16)
	if err != nil || m.Type != tds.TypeSSPI {
		return "", nil, false
	}
	auth, err := ntlm.ParseAuthenticate(m.Payload)
	if err != nil {
		return "", nil, false
	}
	who := auth.Domain + `\` + auth.User
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for name, password := range c.s.Windows {
		if strings.EqualFold(name, who) && auth.VerifyNTLMv2(password, challenge) {
			return who, nil, true
		}
	}
	return who, nil, false
}

// kerberos checks a Kerberos service ticket from an SPNEGO token (what
// go-mssqldb and pamd send) or a raw krb5 GSS token (what FreeTDS sends),
// and, when the AP-REQ requires mutual authentication, returns the AP-REP
// in the same framing (aprep.go).
func (c *conn) kerberos(token []byte) (string, []byte, bool) {
	c.s.mu.Lock()
	kt, mode := c.s.Keytab, c.s.APRep
	c.s.mu.Unlock()
	if kt == nil {
		return "(kerberos)", nil, false
	}
	var krb spnego.KRB5Token
	wrapped := false
	if err := krb.Unmarshal(token); err != nil {
		var neg spnego.SPNEGOToken
		if err := neg.Unmarshal(token); err != nil || !neg.Init {
			return "(unreadable SSPI token)", nil, false
		}
		if err := krb.Unmarshal(neg.NegTokenInit.MechTokenBytes); err != nil {
			return "(unreadable SPNEGO mechanism token)", nil, false
		}
		wrapped = true
	}
	if !krb.IsAPReq() {
		return "(no AP-REQ in the SSPI token)", nil, false
	}
	ok, creds, err := service.VerifyAPREQ(&krb.APReq, service.NewSettings(kt, service.DecodePAC(false)))
	if err != nil || !ok {
		return "(kerberos)", nil, false
	}
	who := creds.UserName() + "@" + creds.Domain()
	seen := APReqSeen{MutualRequired: types.IsFlagSet(&krb.APReq.APOptions, flags.APOptionMutualRequired)}
	if ck := krb.APReq.Authenticator.Cksum; ck.CksumType == chksumtype.GSSAPI && len(ck.Checksum) >= 24 {
		seen.GSSFlags = binary.LittleEndian.Uint32(ck.Checksum[20:24])
	}
	var reply []byte
	if seen.MutualRequired && mode != APRepNone {
		a := krb.APReq.Authenticator
		if reply, err = MutualReply(krb.APReq.Ticket.DecryptedEncPart.Key, a.CTime, a.Cusec, wrapped, mode); err != nil {
			return who, nil, false
		}
		seen.APRepSent = true
	}
	c.s.mu.Lock()
	c.s.apreqs = append(c.s.apreqs, seen)
	c.s.mu.Unlock()
	return who, reply, true
}

func (c *conn) send(payload []byte) error {
	return tds.WriteMessage(c, tds.TypeReply, payload, c.packetSize)
}

// sendTokens sends a reply built in the connection's layout; one that did
// not build is the stand-in's bug, and ends the connection.
func (c *conn) sendTokens(tk *tds.Tokens) error {
	b, err := tk.Bytes()
	if err != nil {
		return err
	}
	return c.send(b)
}

var (
	selectInt    = regexp.MustCompile(`(?i)^select\s+(-?\d+)(?:\s+as\s+\[?(\w+)\]?)?\s*;?$`)
	selectString = regexp.MustCompile(`(?i)^select\s+N?'((?:[^']|'')*)'(?:\s+as\s+\[?(\w+)\]?)?\s*;?$`)
	useDB        = regexp.MustCompile(`(?i)^use\s+\[?(\w+)\]?\s*;?$`)
	alterLogin   = regexp.MustCompile(`(?i)^alter\s+login\s+\[?(\w+)\]?\s+with\s+password\s*=\s*N?'((?:[^']|'')*)'(?:\s+old_password\s*=\s*N?'((?:[^']|'')*)')?\s*;?$`)
	selectTop    = regexp.MustCompile(`(?i)^select\s+top\s*\(?(\d+)\)?\s+n\s*,\s*label\s+from\s+numbers\s*;?$`)
	selectLen    = regexp.MustCompile(`(?is)^select\s+len\(N?'((?:[^']|'')*)'\)\s*;?$`)
	paramName    = regexp.MustCompile(`@\w+`)
	ignored      = regexp.MustCompile(`(?i)^(set\s|begin\s+tran|commit|rollback|if\s+@@trancount)`)
)

// batch answers one SQL batch; statements are separated by newlines or
// semicolons at the end of a line, which is what the test clients send.
func (c *conn) batch(text string) *tds.Tokens {
	out := &tds.Tokens{V: c.v}
	stmts := splitStatements(text)
	for i, stmt := range stmts {
		status := uint16(tds.DoneMore)
		if i == len(stmts)-1 {
			status = tds.DoneFinal
		}
		part, err := c.statement(stmt, status)
		if err != nil {
			number := int32(102)
			var se *sqlError
			if errors.As(err, &se) {
				number = se.number
			}
			return out.Message(tds.TokenError, tds.ServerMessage{Number: number, State: 1, Class: 15,
				Text: err.Error(), ServerName: "pamd-standin", Line: 1}).
				Done(tds.TokenDone, tds.DoneError, 0, 0)
		}
		out.Append(part)
	}
	if len(stmts) == 0 {
		out.Done(tds.TokenDone, tds.DoneFinal, 0, 0)
	}
	return out
}

func splitStatements(text string) []string {
	var out []string
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }) {
		for _, s := range strings.Split(line, ";") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (c *conn) statement(stmt string, status uint16) ([]byte, error) {
	tk := &tds.Tokens{V: c.v}
	switch {
	case ignored.MatchString(stmt):
		return tk.Done(c.doneToken, status, 0, 0).Bytes()
	case useDB.MatchString(stmt):
		db := useDB.FindStringSubmatch(stmt)[1]
		tk.EnvChange(tds.EnvDatabase, db, c.database)
		c.database = db
		return tk.Done(c.doneToken, status, 0, 0).Bytes()
	case alterLogin.MatchString(stmt):
		m := alterLogin.FindStringSubmatch(stmt)
		name, next, old := m[1], strings.ReplaceAll(m[2], "''", "'"), strings.ReplaceAll(m[3], "''", "'")
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
		cur, ok := c.s.Logins[name]
		self := name == c.user && m[3] != ""
		switch {
		case !ok || !(self || c.s.Sysadmins[c.user]):
			return nil, &sqlError{15151, "Cannot alter the login '" + name + "', because it does not exist or you do not have permission."}
		case self && old != cur:
			return nil, &sqlError{15151, "Cannot alter the login '" + name + "', because it does not exist or you do not have permission."}
		case c.s.CheckPolicy && !complex(next):
			return nil, &sqlError{15118, "Password validation failed. The password does not meet the operating system policy requirements because it is not complex enough."}
		}
		c.s.Logins[name] = next
		return tk.Done(c.doneToken, status, 0, 0).Bytes()
	case selectTop.MatchString(stmt):
		n, err := strconv.Atoi(selectTop.FindStringSubmatch(stmt)[1])
		if err != nil || n > 10_000_000 {
			return nil, fmt.Errorf("TOP %s is more than the stand-in makes", selectTop.FindStringSubmatch(stmt)[1])
		}
		return c.numbers(n, status)
	case selectLen.MatchString(stmt):
		v := strings.ReplaceAll(selectLen.FindStringSubmatch(stmt)[1], "''", "'")
		return c.result([]tds.Column{{Type: tds.TypeIntN}}, [][]any{{int32(len([]rune(v)))}}, status)
	case strings.EqualFold(strings.TrimSuffix(stmt, ";"), "select @@max_precision"): // jTDS asks after login
		return c.result([]tds.Column{{Type: tds.TypeIntN}}, [][]any{{int32(38)}}, status)
	case strings.EqualFold(strings.TrimSuffix(stmt, ";"), "select @@version"):
		return c.result([]tds.Column{{Type: tds.TypeNVarChar}}, [][]any{{Version}}, status)
	case selectInt.MatchString(stmt):
		m := selectInt.FindStringSubmatch(stmt)
		n, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("Arithmetic overflow error converting expression to data type int.")
		}
		return c.result([]tds.Column{{Name: m[2], Type: tds.TypeIntN}}, [][]any{{int32(n)}}, status)
	case selectString.MatchString(stmt):
		m := selectString.FindStringSubmatch(stmt)
		return c.result([]tds.Column{{Name: m[2], Type: tds.TypeNVarChar}}, [][]any{{strings.ReplaceAll(m[1], "''", "'")}}, status)
	}
	return nil, fmt.Errorf("pamd stand-in: statement not supported: %.60s", stmt)
}

func (c *conn) result(cols []tds.Column, rows [][]any, status uint16) ([]byte, error) {
	tk := &tds.Tokens{V: c.v}
	return tk.Result(cols, rows...).Done(c.doneToken, status|tds.DoneCount, 0xC1, uint64(len(rows))).Bytes()
}

// numbers is the stand-in's one table: n from 1 and a label per row.
func (c *conn) numbers(n int, status uint16) ([]byte, error) {
	cols := []tds.Column{{Name: "n", Type: tds.TypeIntN}, {Name: "label", Type: tds.TypeNVarChar}}
	tk := &tds.Tokens{V: c.v}
	tk.Result(cols)
	for i := 1; i <= n && tk.Err == nil; i++ {
		tk.B, tk.Err = tds.AppendRow(tk.B, cols, []any{int32(i), "row " + strconv.Itoa(i)})
	}
	return tk.Done(c.doneToken, status|tds.DoneCount, 0xC1, uint64(n)).Bytes()
}

// rpc answers procedure calls: sp_executesql, sp_prepare, sp_execute,
// sp_prepexec and sp_unprepare, with the statements the batch path knows.
func (c *conn) rpc(calls []tds.RPC) *tds.Tokens {
	out := &tds.Tokens{V: c.v}
	c.doneToken = tds.TokenDoneInProc
	defer func() { c.doneToken = tds.TokenDone }()
	for i, call := range calls {
		status := uint16(tds.DoneMore)
		if i == len(calls)-1 {
			status = tds.DoneFinal
		}
		part, err := c.call(call)
		if err != nil {
			out.Message(tds.TokenError, tds.ServerMessage{Number: 2812, State: 62, Class: 16,
				Text: err.Error(), ServerName: "pamd-standin", ProcName: call.Proc, Line: 1}).
				Done(tds.TokenDoneProc, status|tds.DoneError, 0, 0)
			continue
		}
		out.Append(part).ReturnStatus(0).Done(tds.TokenDoneProc, status, 0xE0, 0)
	}
	return out
}

func (c *conn) call(call tds.RPC) ([]byte, error) {
	arg := func(i int) string {
		if i < len(call.Params) {
			return call.Params[i].Value
		}
		return "NULL"
	}
	switch call.Proc {
	case "sp_executesql":
		return c.execute(unquote(arg(0)), unquote(arg(1)), call.Params[min(len(call.Params), 2):], nil)
	case "sp_prepare":
		h := int32(len(c.prepared) + 1)
		c.prepared[h], c.paramDefs[h] = unquote(arg(2)), unquote(arg(1))
		return tds.AppendReturnValueInt(nil, c.v, 0, call.Params[0].Name, h)
	case "sp_prepexec":
		h := int32(len(c.prepared) + 1)
		c.prepared[h], c.paramDefs[h] = unquote(arg(2)), unquote(arg(1))
		handle, err := tds.AppendReturnValueInt(nil, c.v, 0, call.Params[0].Name, h)
		if err != nil {
			return nil, err
		}
		return c.execute(c.prepared[h], c.paramDefs[h], call.Params[min(len(call.Params), 3):], handle)
	case "sp_execute":
		h, _ := strconv.Atoi(arg(0))
		stmt, ok := c.prepared[int32(h)]
		if !ok {
			return nil, fmt.Errorf("Could not find prepared statement with handle %d.", h)
		}
		return c.execute(stmt, c.paramDefs[int32(h)], call.Params[1:], nil)
	case "sp_unprepare":
		h, _ := strconv.Atoi(arg(0))
		delete(c.prepared, int32(h))
		return nil, nil
	}
	return nil, fmt.Errorf("Could not find stored procedure '%s'.", call.Proc)
}

// execute runs stmt with its parameters written in as literals; after
// comes after the results (an output handle). Parameters sent without a
// name (jTDS does) take theirs from the definitions, in order.
func (c *conn) execute(stmt, defs string, params []tds.RPCParam, after []byte) ([]byte, error) {
	names := paramName.FindAllString(defs, -1)
	params = slices.Clone(params)
	for i := range params {
		if params[i].Name == "" && i < len(names) {
			params[i].Name = names[i]
		}
	}
	for i := len(params) - 1; i >= 0; i-- { // @p10 before @p1
		if params[i].Name == "" {
			continue
		}
		stmt = strings.ReplaceAll(stmt, params[i].Name, params[i].Value)
	}
	c.s.mu.Lock()
	c.s.batches = append(c.s.batches, stmt)
	c.s.mu.Unlock()
	out, err := c.statement(stmt, tds.DoneMore)
	if err != nil {
		return nil, err
	}
	return append(out, after...), nil
}

// unquote turns a string literal as RPCParam shows it back into its text.
func unquote(v string) string {
	v = strings.TrimPrefix(v, "N")
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return v
}

// sqlError is a statement's failure with SQL Server's error number.
type sqlError struct {
	number int32
	text   string
}

func (e *sqlError) Error() string { return e.text }

// complex is Windows' password complexity rule as CHECK_POLICY applies it.
func complex(pw string) bool {
	var upper, lower, digit, other int
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return len([]rune(pw)) >= 8 && upper+lower+digit+other >= 3
}

// Password is a SQL login's current password, read under the server's lock.
func (s *Server) Password(login string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Logins[login]
}

// AddLogin adds or replaces a SQL login; sysadmin grants ALTER ANY LOGIN.
func (s *Server) AddLogin(login, password string, sysadmin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Logins[login] = password
	if s.Sysadmins == nil {
		s.Sysadmins = map[string]bool{}
	}
	s.Sysadmins[login] = sysadmin
}
