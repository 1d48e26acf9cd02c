package tds_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"testing"
	"time"

	_ "github.com/microsoft/go-mssqldb"

	"github.com/pamd/pamd/protocol/tds"
)

// TestRealClientLogin lets go-mssqldb, a real SQL Server client, open a
// connection to a listener that answers PRELOGIN as a server without TLS
// would, and checks the LOGIN7 it then sends decodes to what it was given.
func TestRealClientLogin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *tds.Login7, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		m, err := tds.ReadMessage(c, 0)
		if err != nil || m.Type != tds.TypePrelogin {
			errc <- fmt.Errorf("prelogin: %v (type %v)", err, m)
			return
		}
		if _, err := tds.ParsePrelogin(m.Payload); err != nil {
			errc <- err
			return
		}
		reply := tds.Prelogin{tds.PreloginVersion: {16, 0, 0x10, 0x7B, 0, 0}, tds.PreloginEncryption: {tds.EncryptNotSup}}
		if err := tds.WriteMessage(c, tds.TypeReply, reply.Append(nil), 4096); err != nil {
			errc <- err
			return
		}
		m, err = tds.ReadMessage(c, 0)
		if err != nil || m.Type != tds.TypeLogin7 {
			errc <- fmt.Errorf("login7: %v", err)
			return
		}
		l, err := tds.ParseLogin7(m.Payload)
		if err != nil {
			errc <- err
			return
		}
		got <- l
	}()
	dsn := fmt.Sprintf("sqlserver://report_user:%s@%s?database=orders&app+name=pamd-test&workstation+id=laptop7&encrypt=disable&packet+size=8192&dial+timeout=5",
		"S3cret%21pass%E2%82%AC", ln.Addr())
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go db.PingContext(ctx) // fails once the listener hangs up; the login is what is checked
	select {
	case l := <-got:
		if l.UserName != "report_user" || l.Password != "S3cret!pass€" || l.Database != "orders" ||
			l.AppName != "pamd-test" || l.HostName != "laptop7" || l.PacketSize != 8192 || l.TDSVersion < 0x72000000 {
			t.Fatalf("LOGIN7 from go-mssqldb decoded as %+v", l)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no login from the client")
	}
}
