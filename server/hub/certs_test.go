package hub

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/store"
)

// TestCompletedGatewayCARotationCutsOldCertificates: after complete
// --type gateway, a connection still on a certificate from the retired
// gateway CA is cut and renews nothing; one that renewed onto the new CA
// stays.
func TestCompletedGatewayCARotationCutsOldCertificates(t *testing.T) {
	h, st, a := testHub(t, nil)
	issue := func(name string) *x509.Certificate {
		t.Helper()
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		var c *x509.Certificate
		err = st.Update(func(tx *store.Tx) (err error) {
			if err := tx.CreateGateway(&store.Gateway{ID: "id-" + name, Name: name}); err != nil {
				return err
			}
			_, c, err = a.IssueGateway(tx, name, key.Public(), time.Hour)
			if err != nil {
				return err
			}
			g, err := tx.GatewayByName(name)
			if err != nil {
				return err
			}
			g.CertSerial = c.SerialNumber.String()
			return tx.PutGateway(g)
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oldCert := issue("old")
	if err := a.StartRotation(ca.TypeGateway, nil); err != nil {
		t.Fatal(err)
	}
	newCert := issue("new")
	oldSrv, oldCli := connectGateway(t, h, "old", "")
	newSrv, _ := connectGateway(t, h, "new", "")
	h.mu.Lock()
	h.gw["old"].cert, h.gw["old"].serial = oldCert, oldCert.SerialNumber.String()
	h.gw["new"].cert, h.gw["new"].serial = newCert, newCert.SerialNumber.String()
	oldConn := h.gw["old"]
	h.mu.Unlock()
	if cut := h.CutRetiredGatewayCA(); len(cut) != 0 {
		t.Fatalf("cut during the overlap: %v", cut)
	}
	if err := a.CompleteRotation(ca.TypeGateway, nil); err != nil {
		t.Fatal(err)
	}

	// A renewal on the retired certificate is refused.
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := oldSrv.AcceptStream()
		if err != nil {
			return
		}
		hdr, err := tunnel.ReadHeader(s)
		if err != nil {
			s.Close()
			return
		}
		h.serveRenew(oldConn, hdr, s)
	}()
	key, _ := pki.NewKey()
	csr, _ := pki.NewCSR("old", key)
	hdr, _ := tunnel.NewHeader(tunnel.KindRenew, tunnel.Renewal{CSR: string(csr), Serial: oldCert.SerialNumber.String()})
	s, err := oldCli.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hdr.WriteTo(s); err != nil {
		t.Fatal(err)
	}
	r, err := tunnel.ReadReply(s)
	if err != nil || r.Err() == nil || !strings.Contains(r.Err().Error(), "retired") {
		t.Fatalf("renewal on a retired certificate: %v %v", r, err)
	}
	s.Close()
	<-done

	if cut := h.CutRetiredGatewayCA(); len(cut) != 1 || cut[0] != "old" {
		t.Fatalf("cut after complete: %v, want old", cut)
	}
	if !oldSrv.IsClosed() || newSrv.IsClosed() {
		t.Fatalf("after complete: old closed %v, new closed %v; want true, false", oldSrv.IsClosed(), newSrv.IsClosed())
	}
}
