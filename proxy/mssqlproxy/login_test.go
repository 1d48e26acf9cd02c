package mssqlproxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy/proxytest"
)

const storedPassword = "Stored-Secret-7e4"

// echoServer is a server that repeats what LOGIN7 gave it: reply builds its
// login reply from the LOGIN7 it read (as SQL Server does with a Database
// it cannot open, or an ENVCHANGE naming the database).
func echoServer(t *testing.T, reply func(l *tds.Login7) []byte) string {
	return proxytest.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if m, err := tds.ReadMessage(c, 4096); err != nil || m.Type != tds.TypePrelogin {
			return
		}
		pre := tds.Prelogin{tds.PreloginVersion: {16, 0, 0, 0, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
		tds.WriteMessage(c, tds.TypeReply, pre.Append(nil), 4096)
		m, err := tds.ReadMessage(c, 1<<20)
		if err != nil {
			return
		}
		l, err := tds.ParseLogin7(m.Payload)
		if err != nil {
			return
		}
		tds.WriteMessage(c, tds.TypeReply, reply(l), 4096)
		io.Copy(io.Discard, c)
	})
}

// rawLogin logs in through addr with the given LOGIN7 and returns every
// byte the client received.
func rawLogin(t *testing.T, addr string, login *tds.Login7) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	pre := tds.Prelogin{tds.PreloginVersion: {0, 1, 0, 0, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
	if err := tds.WriteMessage(c, tds.TypePrelogin, pre.Append(nil), 4096); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	m, err := tds.ReadMessage(io.TeeReader(c, &got), 4096)
	if err != nil || m.Type != tds.TypeReply {
		t.Fatalf("PRELOGIN reply: %v", err)
	}
	msg, err := login.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tds.WriteMessage(c, tds.TypeLogin7, msg, 4096); err != nil {
		t.Fatal(err)
	}
	io.Copy(&got, c) // until pamd closes
	return got.Bytes()
}

func clientLogin() *tds.Login7 {
	return &tds.Login7{TDSVersion: 0x74000004, PacketSize: 4096, OptionFlags1: 0xE0, OptionFlags2: 0x03,
		HostName: "laptop", UserName: "anyone", AppName: "test", Database: "orders"}
}

func assertNoSecret(t *testing.T, got []byte) {
	t.Helper()
	_, forms := tds.SecretForms(storedPassword)
	for _, f := range forms {
		if bytes.Contains(got, f) {
			t.Fatalf("the stored password reached the client (as % x)", f)
		}
	}
}

// TestLoginReplyRepeatingThePassword: a login reply that carries the
// stored password, in the clear or as LOGIN7 obfuscates it, in an
// ENVCHANGE, an INFO or an ERROR, never reaches the client; the client
// reads a pamd error instead.
func TestLoginReplyRepeatingThePassword(t *testing.T) {
	_, raw := tds.SecretForms(storedPassword)
	obfuscated := string(raw[3]) // the obfuscated password read as text
	for name, reply := range map[string]func(l *tds.Login7) []byte{
		"envchange": func(l *tds.Login7) []byte {
			return tokens(t, (&tds.Tokens{V: tds.Version74}).EnvChange(tds.EnvDatabase, l.Password, "master").LoginAck("x", 16, 0, 1).Done(tds.TokenDone, tds.DoneFinal, 0, 0))
		},
		"envchange, obfuscated": func(l *tds.Login7) []byte {
			return tokens(t, (&tds.Tokens{V: tds.Version74}).EnvChange(tds.EnvDatabase, obfuscated, "master").LoginAck("x", 16, 0, 1).Done(tds.TokenDone, tds.DoneFinal, 0, 0))
		},
		"info": func(l *tds.Login7) []byte {
			return tokens(t, (&tds.Tokens{V: tds.Version74}).Message(tds.TokenInfo, tds.ServerMessage{Number: 5701, Text: "Changed database context to '" + l.Password + "'."}).
				LoginAck("x", 16, 0, 1).Done(tds.TokenDone, tds.DoneFinal, 0, 0))
		},
		"error 4060": func(l *tds.Login7) []byte {
			return tokens(t, (&tds.Tokens{V: tds.Version74}).Message(tds.TokenError, tds.ServerMessage{Number: 4060, Class: 11,
				Text: `Cannot open database "` + l.Password + `" requested by the login. The login failed.`}).Done(tds.TokenDone, tds.DoneError, 0, 0))
		},
	} {
		t.Run(name, func(t *testing.T) {
			d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: echoServer(t, reply), MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: storedPassword}}}
			got := rawLogin(t, serve(t, d), clientLogin())
			assertNoSecret(t, got)
			if !bytes.Contains(got, utf16le("pamd: the server's login reply repeats a credential of account app")) {
				t.Fatalf("no pamd error in %q", got)
			}
		})
	}
}

// TestScrubText: texts pamd builds from a server's words lose every form
// of the stored credentials.
func TestScrubText(t *testing.T) {
	texts, _ := tds.SecretForms(storedPassword)
	d := &tunnel.Descriptor{MSSQL: &tunnel.MSSQLTarget{Login: tunnel.Login{Password: storedPassword}, ServerTLSKey: "-----BEGIN EC PRIVATE KEY-----x"}}
	for _, s := range append(texts, d.MSSQL.ServerTLSKey) {
		if got := scrubText("Cannot open database \""+s+"\".", d); strings.Contains(got, s) || !strings.Contains(got, "[redacted]") {
			t.Errorf("scrubbed: %q", got)
		}
	}
}

// TestOversizedClientLogin: a LOGIN7 whose fields are longer than MS-TDS
// allows (sized so that re-encoding would wrap a 16-bit offset onto the
// password) is refused with a pamd error, before pamd logs in anywhere.
func TestOversizedClientLogin(t *testing.T) {
	var logins atomic.Int32
	target := echoServer(t, func(l *tds.Login7) []byte {
		logins.Add(1)
		return tokens(t, (&tds.Tokens{V: tds.Version74}).EnvChange(tds.EnvDatabase, l.Database, "master").LoginAck("x", 16, 0, 1).Done(tds.TokenDone, tds.DoneFinal, 0, 0))
	})
	d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: target, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: storedPassword}}}
	got := craftedLogin(t, serve(t, d), storedPassword)
	assertNoSecret(t, got)
	if !bytes.Contains(got, utf16le("pamd: the client's LOGIN7 was refused")) || !bytes.Contains(got, utf16le("HostName of 20000 characters")) {
		t.Fatalf("no pamd error in %q", got)
	}
	if logins.Load() != 0 {
		t.Fatal("pamd logged in with an oversized LOGIN7")
	}
}

// craftedLogin sends a LOGIN7 built by hand, with HostName, AppName and
// CltIntName sized so that pamd's re-encoding (user "app", the password,
// ServerName "127.0.0.1") would wrap Database's offset onto the password.
func craftedLogin(t *testing.T, addr, password string) []byte {
	t.Helper()
	h, db := 20000, strings.Repeat("d", len(password))
	ac := (0x10000 - 2*len(password) - 2*len("127.0.0.1")) / 2
	a, c := ac/2, ac-ac/2
	strs := []string{strings.Repeat("h", h), "anyone", "", strings.Repeat("a", a), "srv", "", strings.Repeat("c", c), "", db}
	fixed := make([]byte, 94)
	var data []byte
	le := func(b []byte, at int, v uint32, n int) {
		for i := 0; i < n; i++ {
			b[at+i] = byte(v >> (8 * i))
		}
	}
	le(fixed, 4, 0x74000004, 4)
	le(fixed, 8, 4096, 4)
	fixed[24], fixed[25] = 0xE0, 0x03
	for i, s := range strs {
		u := utf16le(s)
		le(fixed, 36+4*i, uint32(94+len(data)), 2)
		le(fixed, 38+4*i, uint32(len(u)/2), 2)
		data = append(data, u...)
	}
	for _, at := range []int{78, 82, 86} { // SSPI, AtchDBFile, ChangePassword: empty
		le(fixed, at, uint32(94+len(data)), 2)
	}
	le(fixed, 0, uint32(94+len(data)), 4)
	msg := append(fixed, data...)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	pre := tds.Prelogin{tds.PreloginVersion: {0, 1, 0, 0, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
	tds.WriteMessage(conn, tds.TypePrelogin, pre.Append(nil), 4096)
	var got bytes.Buffer
	if _, err := tds.ReadMessage(io.TeeReader(conn, &got), 4096); err != nil {
		t.Fatal(err)
	}
	if err := tds.WriteMessage(conn, tds.TypeLogin7, msg, 4096); err != nil {
		t.Fatal(err)
	}
	io.Copy(&got, conn)
	return got.Bytes()
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// tokens is a reply a test built; one that does not build fails the test.
func tokens(t testing.TB, tk *tds.Tokens) []byte {
	b, err := tk.Bytes()
	if err != nil {
		t.Error(err)
	}
	return b
}
