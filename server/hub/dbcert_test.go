package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/store"
)

// TestDBCert: the hub signs a gateway's certificate request only for a
// live session of a pkinit account on a resource that gateway serves,
// from the db-client CA, until the session's expiry; each answer is
// audited.
func TestDBCert(t *testing.T) {
	h, st, authority := testHub(t, func(c *Config) { c.CertLifetime = 0; c.DBClientCRLURL = "https://pamd.example.com/pki/db-client.crl" })
	res := &store.Resource{ID: store.NewID(), Name: "erp", Type: "mssql", Gateway: "gwa", Host: "10.0.0.5", Port: 1433}
	pk := &store.Account{ID: store.NewID(), ResourceID: res.ID, Name: "alice", Username: "alice", Auth: "pkinit", Realm: "CORP.EXAMPLE.COM", SID: "S-1-5-21-1-2-3-1001"}
	sqlAcct := &store.Account{ID: store.NewID(), ResourceID: res.ID, Name: "app", Username: "app", Password: "x", Auth: "sql"}
	live := &store.Session{ID: store.NewID(), ResourceID: res.ID, AccountID: pk.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(20 * time.Minute)}
	ended := &store.Session{ID: store.NewID(), ResourceID: res.ID, AccountID: pk.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), EndedAt: time.Now()}
	ofSQL := &store.Session{ID: store.NewID(), ResourceID: res.ID, AccountID: sqlAcct.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		for _, a := range []*store.Account{pk, sqlAcct} {
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		for _, s := range []*store.Session{live, ended, ofSQL} {
			if err := tx.PutSession(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := pki.NewCSR("alice", key)

	ask := func(gateway, session string, csr []byte) (*x509.Certificate, string) {
		t.Helper()
		a, b := net.Pipe()
		srv, err := proxy.YamuxServer(a)
		if err != nil {
			t.Fatal(err)
		}
		cli, err := proxy.YamuxClient(b)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { cli.Close(); srv.Close() }()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s, err := srv.AcceptStream()
			if err != nil {
				return
			}
			hdr, err := tunnel.ReadHeader(s)
			if err != nil {
				s.Close()
				return
			}
			h.serveDBCert(&gatewayConn{name: gateway, remote: "10.0.0.9:5555", sess: srv}, hdr, s)
		}()
		defer func() { <-done }()
		s, err := cli.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(10 * time.Second))
		hdr, _ := tunnel.NewHeader(tunnel.KindDBCert, tunnel.DBClientCertRequest{SessionID: session, CSR: string(csr)})
		if _, err := hdr.WriteTo(s); err != nil {
			t.Fatal(err)
		}
		r, err := tunnel.ReadReply(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Err() != nil {
			return nil, r.Err().Error()
		}
		m, err := tunnel.ReadMessage(s)
		if err != nil {
			t.Fatal(err)
		}
		var out tunnel.RenewalResult
		if m.Type != tunnel.MsgCertificate || json.Unmarshal(m.Detail, &out) != nil {
			t.Fatalf("answer %q", m.Type)
		}
		block, _ := pem.Decode([]byte(out.Certificate))
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c, ""
	}

	c, refused := ask("gwa", live.ID, csr)
	if c == nil {
		t.Fatalf("refused: %s", refused)
	}
	if c.CheckSignatureFrom(authority.DBClientCA()) != nil || !c.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("not the db-client CA's certificate for the gateway's key")
	}
	if c.NotAfter.After(live.ExpiresAt) || time.Until(c.NotAfter) < 15*time.Minute {
		t.Fatalf("valid until %v, the session until %v", c.NotAfter, live.ExpiresAt)
	}
	if ps := pkinit.CertificatePrincipals(c); len(ps) != 1 || ps[0].String() != "alice@CORP.EXAMPLE.COM" {
		t.Fatalf("principal %v", ps)
	}
	for _, tt := range []struct {
		gateway, session string
		csr              []byte
		want             string
	}{
		{"gwb", live.ID, csr, "not served by gateway gwb"},
		{"gwa", ended.ID, csr, "the session is not live"},
		{"gwa", "no-such-session", csr, "the session is not live"},
		{"gwa", ofSQL.ID, csr, "does not log in with PKINIT"},
		{"gwa", live.ID, []byte("not a CSR"), "certificate request"},
	} {
		if c, refused := ask(tt.gateway, tt.session, tt.csr); c != nil || !strings.Contains(refused, tt.want) {
			t.Errorf("%s %s: %v %q, want a refusal with %q", tt.gateway, tt.session, c, refused, tt.want)
		}
	}
	var ok, failed int
	st.View(func(tx *store.Tx) error {
		return tx.AuditEvents(func(e *store.AuditEvent) bool {
			if e.Action == "dbclient.issue" {
				if e.Outcome == "success" {
					ok++
				} else {
					failed++
				}
			}
			return true
		})
	})
	if ok != 1 || failed != 2 {
		t.Fatalf("audit: %d issued, %d refused; want 1 and 2 (gateway and auth refusals)", ok, failed)
	}
}
