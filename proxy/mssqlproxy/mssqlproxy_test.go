package mssqlproxy

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tds/tdstest"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/proxytest"
)

// serve puts Handle behind a loopback listener the way the gateway does:
// the tunnel reply first, then the client's bytes.
// The relays stop, and the handlers return, when the test ends.
func serve(t *testing.T, d *tunnel.Descriptor) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return proxytest.Serve(t, func(c net.Conn) {
		a, b := net.Pipe()
		handled := make(chan struct{})
		go func() { // as the gateway does
			defer close(handled)
			Handler{}.Handle(ctx, a, d, nil)
			a.Close()
		}()
		defer func() { b.Close(); <-handled }()
		if _, err := tunnel.ReadReply(b); err == nil {
			proxy.Join(ctx, c, b, nil, nil)
		}
	})
}

func serverTLS(t *testing.T) (*tls.Config, string) {
	p := pkitest.New(t, pki.Leaf{CommonName: "sql"})
	return p.ServerConfig(), string(p.CAPEM)
}

// TestServerEncryptionModes: every PRELOGIN encryption mode a server may
// answer, against the resource's TLS setting: TLS when it can, refusal
// with a reason when the two cannot agree.
func TestServerEncryptionModes(t *testing.T) {
	cfg, caPEM := serverTLS(t)
	_, otherCA := serverTLS(t)
	for _, tt := range []struct {
		name   string
		server byte
		tls    bool
		ca     string
		want   string // "" works, else the error says this
	}{
		{"server offers login-only, resource TLS on", tds.EncryptOff, true, caPEM, ""},
		{"server ON, resource TLS on", tds.EncryptOn, true, caPEM, ""},
		{"server REQ, resource TLS on", tds.EncryptReq, true, caPEM, ""},
		{"server NOT_SUP, resource TLS off", tds.EncryptNotSup, false, "", ""},
		{"server NOT_SUP, resource TLS on: fail closed", tds.EncryptNotSup, true, caPEM, "cannot encrypt (PRELOGIN answered ENCRYPT_NOT_SUP)"},
		{"server REQ, resource TLS off", tds.EncryptReq, false, "", "requires encryption (PRELOGIN answered ENCRYPT_REQ)"},
		{"server's certificate from another CA", tds.EncryptOn, true, otherCA, "certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tdstest.StartTLS(map[string]string{"app": "Pass-1"}, tt.server, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: s.Addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"},
				TargetTLS: tunnel.TargetTLS{TLS: tt.tls, TLSRejectUnauthorized: true, TLSCA: tt.ca}, Database: "orders"}}
			u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("x", ""), Host: serve(t, d), RawQuery: "encrypt=disable&dial+timeout=5"}
			db, _ := sql.Open("sqlserver", u.String())
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			var n int
			err = db.QueryRowContext(ctx, "SELECT 4").Scan(&n)
			if tt.want == "" {
				if err != nil || n != 4 {
					t.Fatalf("%d %v", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "mssql: pamd: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a pamd error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Pass-1") {
				t.Fatal("the stored password is in the error")
			}
		})
	}
}

// TestUnreachableServer: the client reads why, as a login error.
func TestUnreachableServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d := &tunnel.Descriptor{Resource: "sql1", Account: "app", Target: addr, MSSQL: &tunnel.MSSQLTarget{Auth: "sql", Login: tunnel.Login{Username: "app", Password: "Pass-1"}}}
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("x", ""), Host: serve(t, d), RawQuery: "encrypt=disable&dial+timeout=5"}
	db, _ := sql.Open("sqlserver", u.String())
	defer db.Close()
	err := db.Ping()
	var me mssql.Error
	if !errors.As(err, &me) || !strings.Contains(me.Message, "pamd: the gateway cannot reach "+addr) {
		t.Fatalf("got %v", err)
	}
}

// TestAnswerWithError: a client requiring encryption reads the refusal
// over TLS with the throwaway certificate.
func TestAnswerWithError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cert := SelfSignedCertificate()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			AnswerWithError(c, cert, "pamd: session abc expired")
			c.Close()
		}
	}()
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("x", ""), Host: ln.Addr().String(), RawQuery: "encrypt=true&TrustServerCertificate=true&dial+timeout=5"}
	db, _ := sql.Open("sqlserver", u.String())
	defer db.Close()
	if err = db.Ping(); err == nil || !strings.Contains(err.Error(), "mssql: pamd: session abc expired") {
		t.Fatalf("got %v", err)
	}
}
