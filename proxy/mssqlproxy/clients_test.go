package mssqlproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/proxytest"
)

// records collects what a handler logs.
type records struct {
	mu  sync.Mutex
	got []tunnel.Record
}

func (r *records) add(rec tunnel.Record) { r.mu.Lock(); r.got = append(r.got, rec); r.mu.Unlock() }

func (r *records) all() []tunnel.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tunnel.Record(nil), r.got...)
}

// serveLogged is serve with a recorder.
func serveLogged(t *testing.T, d *tunnel.Descriptor, rec *records) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return proxytest.Serve(t, func(c net.Conn) {
		a, b := net.Pipe()
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			Handler{}.Handle(ctx, a, d, rec.add)
			a.Close()
		}()
		defer func() { b.Close(); <-handled }()
		if _, err := tunnel.ReadReply(b); err == nil {
			proxy.Join(ctx, c, b, nil, nil)
		}
	})
}

// tdsClient is a minimal client at one TDS version: PRELOGIN (unless
// skipped), LOGIN7, then batches, each reply read in the version's layout.
type tdsClient struct {
	t testing.TB
	c net.Conn
	v tds.Version
}

func dialTDS(t testing.TB, addr string, v tds.Version, prelogin bool, user, password string) (*tdsClient, tds.Outcome) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if prelogin {
		pre := tds.Prelogin{tds.PreloginVersion: {0, 1, 0, 0, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
		if err := tds.WriteMessage(c, tds.TypePrelogin, pre.Append(nil), 4096); err != nil {
			t.Fatal(err)
		}
		if m, err := tds.ReadMessage(c, 4096); err != nil || m.Type != tds.TypeReply {
			t.Fatalf("PRELOGIN reply: %v", err)
		}
	}
	l := &tds.Login7{TDSVersion: uint32(v), PacketSize: 4096, OptionFlags1: 0xE0, OptionFlags2: 0x03,
		HostName: "laptop", UserName: user, Password: password, AppName: "test"}
	msg, err := l.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tds.WriteMessage(c, tds.TypeLogin7, msg, 4096); err != nil {
		t.Fatal(err)
	}
	tc := &tdsClient{t: t, c: c, v: v}
	return tc, tc.reply()
}

func (tc *tdsClient) reply() tds.Outcome {
	tc.t.Helper()
	m, err := tds.ReadMessage(tc.c, 1<<20)
	if err != nil {
		tc.t.Fatalf("TDS %v: read the reply: %v", tc.v, err)
	}
	out, _, _, err := tds.ReadReply(m.Payload, tc.v, false)
	if err != nil {
		tc.t.Fatalf("TDS %v: the reply does not read in the %v layout: %v", tc.v, tc.v, err)
	}
	return out
}

func (tc *tdsClient) query(text string) tds.Outcome {
	tc.t.Helper()
	payload := tds.AppendSQLBatch(nil, text)
	if tc.v.Before72() { // ALL_HEADERS begin with TDS 7.2
		payload = payload[tds.BatchTextStart(payload):]
	}
	if err := tds.WriteMessage(tc.c, tds.TypeSQLBatch, payload, 4096); err != nil {
		tc.t.Fatal(err)
	}
	return tc.reply()
}

// TestEveryTDSVersion: a client at each version from 7.0 to 7.4 logs in
// through pamd to a server that answers in that version's layout; pamd
// reads the login reply and the results in it (the query log counts the
// rows), and the client reads them too.
func TestEveryTDSVersion(t *testing.T) {
	s, err := tdstest.Start(map[string]string{"app": "Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []tds.Version{tds.Version70, tds.Version71, tds.Version71Rev1, tds.Version72, tds.Version73A, tds.Version73B, tds.Version74} {
		t.Run(v.String(), func(t *testing.T) {
			var rec records
			d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"}}}
			c, out := dialTDS(t, serveLogged(t, d, &rec), v, true, "anyone", "")
			if !out.LoginAck || out.Version != v {
				t.Fatalf("login: %+v", out)
			}
			if got := c.query("SELECT TOP 3 n, label FROM numbers"); got.RowsReturned != 3 || len(got.Errors) != 0 {
				t.Fatalf("query: %+v", got)
			}
			if got := c.query("SELECT nonsense"); len(got.Errors) != 1 || got.Errors[0].Line != 1 {
				t.Fatalf("error reply: %+v", got)
			}
			c.c.Close()
			deadline := time.Now().Add(5 * time.Second)
			for len(rec.all()) < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			all := rec.all()
			if len(all) < 2 || all[0].Rows != 3 || all[1].Code != 102 {
				t.Fatalf("query log: %+v", all)
			}
		})
	}
}

// TestLoginWithoutPrelogin: a client that sends LOGIN7 first (jTDS with
// ssl=off) logs in; toward the server pamd still negotiates the
// resource's TLS.
func TestLoginWithoutPrelogin(t *testing.T) {
	cfg, caPEM := serverTLS(t)
	s, err := tdstest.StartTLS(map[string]string{"app": "Pass-1"}, tds.EncryptOn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"},
		TargetTLS: tunnel.TargetTLS{TLS: true, TLSRejectUnauthorized: true, TLSCA: caPEM}}}
	c, out := dialTDS(t, serve(t, d), tds.Version71Rev1, false, "anyone", "")
	if !out.LoginAck || out.Version != tds.Version71Rev1 {
		t.Fatalf("login: %+v", out)
	}
	if got := c.query("SELECT 7"); got.RowsReturned != 1 {
		t.Fatalf("query: %+v", got)
	}
	if s.Prelogins() != 1 {
		t.Fatalf("pamd sent %d PRELOGINs to the server", s.Prelogins())
	}
	// The stand-in takes LOGIN7 first as SQL Server does.
	if _, out := dialTDS(t, s.Addr, tds.Version71Rev1, false, "app", "Pass-1"); !out.LoginAck {
		t.Fatalf("stand-in, LOGIN7 first: %+v", out)
	}
}

// clientCert is the certificate pamd shows clients, as the descriptor
// carries it, and the CA that signed it.
func clientCert(t *testing.T) (certPEM, keyPEM string, ca []byte) {
	p := pkitest.New(t, pki.Leaf{CommonName: "sql1", DNSNames: []string{"localhost"}})
	return string(p.CertPEM), string(p.KeyPEM), p.CAPEM
}

// TestStrictEncryption: a TDS 8.0 client (TLS before PRELOGIN, ALPN
// tds/8.0) logs in through pamd, to a server that is not strict and to one
// that is (tls_strict).
func TestStrictEncryption(t *testing.T) {
	cfg, caPEM := serverTLS(t)
	certPEM, keyPEM, clientCA := clientCert(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, clientCA, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, strict := range []bool{false, true} {
		name := "server TDS 7.4 with TLS"
		if strict {
			name = "server TDS 8.0"
		}
		t.Run(name, func(t *testing.T) {
			var s *tdstest.Server
			var err error
			if strict {
				s, err = tdstest.StartStrict(map[string]string{"app": "Pass-1"}, cfg)
			} else {
				s, err = tdstest.StartTLS(map[string]string{"app": "Pass-1"}, tds.EncryptOn, cfg)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"},
				TargetTLS: tunnel.TargetTLS{TLS: true, TLSRejectUnauthorized: true, TLSCA: caPEM}, TLSStrict: strict,
				ServerTLSCert: certPEM, ServerTLSKey: keyPEM}}
			u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("x", ""), Host: serve(t, d), RawQuery: url.Values{"encrypt": {"strict"}, "certificate": {caFile}, "dial timeout": {"5"}}.Encode()}
			db, _ := sql.Open("sqlserver", u.String())
			defer db.Close()
			var n int
			if err := db.QueryRow("SELECT 8").Scan(&n); err != nil || n != 8 {
				t.Fatalf("%d, %v", n, err)
			}
			if strict {
				if alpn := s.ALPN(); len(alpn) != 1 || alpn[0] != "tds/8.0" {
					t.Fatalf("ALPN toward the server: %q", alpn)
				}
				if l := s.LoginsSeen(); len(l) != 1 || tds.Version(l[0].TDSVersion) != tds.Version80 {
					t.Fatalf("LOGIN7 toward the strict server: %+v", l)
				}
			} else if l := s.LoginsSeen(); len(l) != 1 || tds.Version(l[0].TDSVersion) != tds.Version74 {
				t.Fatalf("LOGIN7 toward the server that is not strict: %+v", l)
			}
		})
	}
	// A strict resource whose server starts in the clear: the client reads why.
	plain, err := tdstest.Start(map[string]string{"app": "Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: plain.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"},
		TargetTLS: tunnel.TargetTLS{TLS: true}, TLSStrict: true}}
	_, out := dialTDS(t, serve(t, d), tds.Version74, true, "anyone", "")
	if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Text, "pamd: TLS with "+plain.Addr+" (TDS 8.0 strict encryption") {
		t.Fatalf("got %+v", out)
	}
}

// TestRefusalAtEveryStage: whatever stage the client is at when pamd
// refuses, it reads a pamd: ERROR token in its version's layout.
func TestRefusalAtEveryStage(t *testing.T) {
	s, err := tdstest.Start(map[string]string{"app": "Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"}}}
	wrong := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Wrong-2"}}}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := ln.Addr().String()
	ln.Close()
	unreachable := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: gone, MSSQL: &tunnel.MSSQLTarget{Auth: "sql"}}

	errorIn := func(t *testing.T, v tds.Version, payload []byte, want string) {
		t.Helper()
		out, _, _, err := tds.ReadReply(payload, v, false)
		if err != nil || len(out.Errors) != 1 || !strings.HasPrefix(out.Errors[0].Text, "pamd: ") || !strings.Contains(out.Errors[0].Text, want) {
			t.Fatalf("got %+v, %v; want a pamd: error saying %q", out, err, want)
		}
		if bytes.Contains(payload, []byte("W\x00r\x00o\x00n\x00g\x00-\x002")) {
			t.Fatal("the stored password reached the client")
		}
	}
	t.Run("first message neither PRELOGIN nor LOGIN7", func(t *testing.T) {
		c, _ := net.Dial("tcp", serve(t, good))
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tds.WriteMessage(c, tds.TypeSQLBatch, tds.AppendSQLBatch(nil, "SELECT 1"), 4096)
		m, err := tds.ReadMessage(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		errorIn(t, tds.Version74, m.Payload, "not PRELOGIN or LOGIN7")
	})
	t.Run("malformed PRELOGIN", func(t *testing.T) {
		c, _ := net.Dial("tcp", serve(t, good))
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tds.WriteMessage(c, tds.TypePrelogin, []byte{0x00, 0x00, 0x40, 0x00, 0x06}, 4096)
		if m, err := tds.ReadMessage(c, 4096); err != nil || m.Type != tds.TypeReply {
			t.Fatalf("PRELOGIN reply: %v", err)
		}
		msg, _ := clientLogin().Append(nil)
		tds.WriteMessage(c, tds.TypeLogin7, msg, 4096)
		m, err := tds.ReadMessage(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		errorIn(t, tds.Version74, m.Payload, "the client's PRELOGIN")
	})
	for _, v := range []tds.Version{tds.Version71Rev1, tds.Version74} {
		for _, prelogin := range []bool{true, false} {
			t.Run("server refuses the login, TDS "+v.String()+map[bool]string{true: "", false: ", LOGIN7 first"}[prelogin], func(t *testing.T) {
				_, out := dialTDS(t, serve(t, wrong), v, prelogin, "anyone", "")
				if len(out.Errors) != 1 || out.Errors[0].Number != 18456 || !strings.Contains(out.Errors[0].Text, "pamd: SQL Server refused the stored credentials of account app") {
					t.Fatalf("got %+v", out)
				}
			})
			t.Run("unreachable server, TDS "+v.String()+map[bool]string{true: "", false: ", LOGIN7 first"}[prelogin], func(t *testing.T) {
				_, out := dialTDS(t, serve(t, unreachable), v, prelogin, "anyone", "")
				if len(out.Errors) != 1 || !strings.Contains(out.Errors[0].Text, "pamd: the gateway cannot reach "+gone) {
					t.Fatalf("got %+v", out)
				}
			})
		}
	}
	t.Run("TDS 8.0 client, unreachable server", func(t *testing.T) {
		certPEM, keyPEM, clientCA := clientCert(t)
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, clientCA, 0o600); err != nil {
			t.Fatal(err)
		}
		d := *unreachable
		part := *d.MSSQL
		part.ServerTLSCert, part.ServerTLSKey = certPEM, keyPEM
		d.MSSQL = &part
		u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("x", ""), Host: serve(t, &d), RawQuery: url.Values{"encrypt": {"strict"}, "certificate": {caFile}, "dial timeout": {"5"}}.Encode()}
		db, _ := sql.Open("sqlserver", u.String())
		defer db.Close()
		if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "mssql: pamd: the gateway cannot reach "+gone) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("TDS 8.0 client, LOGIN7 that does not parse", func(t *testing.T) {
		certPEM, keyPEM, _ := clientCert(t)
		d := *good
		part := *d.MSSQL
		part.ServerTLSCert, part.ServerTLSKey = certPEM, keyPEM
		d.MSSQL = &part
		raw, err := net.Dial("tcp", serve(t, &d))
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		c := tlsClient(raw)
		if err := c.Handshake(); err != nil || c.ConnectionState().NegotiatedProtocol != "tds/8.0" {
			t.Fatalf("handshake: %v, ALPN %q", err, c.ConnectionState().NegotiatedProtocol)
		}
		tds.WriteMessage(c, tds.TypeLogin7, make([]byte, 40), 4096)
		m, err := tds.ReadMessage(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		errorIn(t, tds.Version74, m.Payload, "the client's LOGIN7 was refused")
	})
}

// tlsClient starts a TDS 8.0 handshake as a strict client does.
func tlsClient(c net.Conn) *tls.Conn {
	return tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"tds/8.0"}})
}

// TestProbe: the prober reaches the server, logs in with an account, and
// says why a login fails, without the password.
func TestProbe(t *testing.T) {
	s, err := tdstest.Start(map[string]string{"app": "Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := &tunnel.Descriptor{Resource: "sql1", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{}}
	r, err := Handler{}.Probe(context.Background(), d)
	if err != nil || r.Version != "SQL Server 16.0.4219, no TLS" {
		t.Fatalf("reach: %+v, %v", r, err)
	}
	d = &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"}}}
	if r, err = (Handler{}).Probe(context.Background(), d); err != nil || r.Version != "SQL Server 16.0.4219, TDS 7.4, no TLS" {
		t.Fatalf("log in: %+v, %v", r, err)
	}
	d.MSSQL.Password = "Wrong-Pass-2"
	if _, err = (Handler{}).Probe(context.Background(), d); err == nil || !strings.Contains(err.Error(), "error 18456") || strings.Contains(err.Error(), "Wrong-Pass-2") {
		t.Fatalf("wrong password: %v", err)
	}
}

// FuzzGreet: whatever a client sends first, greet ends (no panic, no
// hang) and succeeds only with a LOGIN7 in hand.
func FuzzGreet(f *testing.F) {
	var login bytes.Buffer
	msg, _ := clientLogin().Append(nil)
	tds.WriteMessage(&login, tds.TypeLogin7, msg, 4096)
	var pre bytes.Buffer
	tds.WriteMessage(&pre, tds.TypePrelogin, tds.Prelogin{tds.PreloginEncryption: {tds.EncryptNotSup}}.Append(nil), 4096)
	f.Add(login.Bytes())
	f.Add(append(pre.Bytes(), login.Bytes()...))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5})
	f.Add([]byte{0x12, 0x01, 0x00, 0x09, 0, 0, 0, 0, 0xFF})
	f.Fuzz(func(t *testing.T, in []byte) {
		g, err := greet(&scripted{Reader: bytes.NewReader(in)}, nil)
		if err == nil && g.login == nil {
			t.Fatal("greeted without a LOGIN7")
		}
		if len(g.login) > len(in) {
			t.Fatal("a LOGIN7 longer than what the client sent")
		}
	})
}

// scripted is a client connection that sends a fixed script and ignores
// what it is told.
type scripted struct {
	net.Conn
	*bytes.Reader
}

func (s *scripted) Read(b []byte) (int, error)  { return s.Reader.Read(b) }
func (s *scripted) Write(b []byte) (int, error) { return len(b), nil }
func (s *scripted) Close() error                { return nil }
func (s *scripted) SetDeadline(time.Time) error { return nil }

// TestAnswerWithErrorLogin7First: pamd connect's refusal (an expired
// session, say) reaches a client that sends LOGIN7 first, in its TDS 7.1
// layout.
func TestAnswerWithErrorLogin7First(t *testing.T) {
	addr := proxytest.Serve(t, func(c net.Conn) { AnswerWithError(c, SelfSignedCertificate(), "pamd: session abc expired") })
	_, out := dialTDS(t, addr, tds.Version71Rev1, false, "anyone", "")
	if len(out.Errors) != 1 || out.Errors[0].Text != "pamd: session abc expired" || out.LoginAck {
		t.Fatalf("got %+v", out)
	}
}
