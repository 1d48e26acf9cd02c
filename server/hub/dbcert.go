package hub

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/store"
)

// serveDBCert signs a gateway's certificate request for a PKINIT login
// (a dbcert stream): only for a live session of a pkinit account on a
// resource this gateway serves, from the db-client CA, until the
// session's expiry (at most an hour). The key stays on the gateway;
// nothing secret travels.
func (h *Hub) serveDBCert(gc *gatewayConn, hdr *tunnel.Header, st *yamux.Stream) {
	defer st.Close()
	var req tunnel.DBClientCertRequest
	if err := hdr.Decode(&req); err != nil {
		tunnel.Refuse("pamd server: malformed certificate request").WriteTo(st)
		return
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		tunnel.Refuse("pamd server: certificate request: %v", err).WriteTo(st)
		return
	}
	var der []byte
	var refusal error
	err = h.st.Update(func(tx *store.Tx) error {
		sess, err := tx.Session(req.SessionID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !sess.Active(time.Now()) {
			refusal = errors.New("the session is not live")
			return nil
		}
		if err != nil {
			return err
		}
		res, err := tx.Resource(sess.ResourceID)
		if err != nil {
			return err
		}
		acct, err := tx.Account(res.ID, sess.AccountID)
		if err != nil {
			return err
		}
		target := res.Name + "/" + acct.Name
		switch {
		case !gc.serves(res):
			refusal = fmt.Errorf("resource %s is not served by gateway %s", res.Name, gc.name)
		case acct.Auth != "pkinit":
			refusal = fmt.Errorf("account %s does not log in with PKINIT", target)
		}
		if refusal != nil {
			return audit.Append(tx, "gateway:"+gc.name, "dbclient.issue", target, "failure", audit.Host(gc.remote), refusal.Error())
		}
		der, err = h.cfg.CA.IssueDBClient(csr.PublicKey, ca.DBClientCert{Username: acct.Username, Realm: acct.Realm,
			UPN: acct.UPN, SID: acct.SID, NotAfter: sess.ExpiresAt, CRLURL: h.cfg.DBClientCRLURL})
		if err != nil {
			refusal = err
			return audit.Append(tx, "gateway:"+gc.name, "dbclient.issue", target, "failure", audit.Host(gc.remote), err.Error())
		}
		issued, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		return audit.Append(tx, "gateway:"+gc.name, "dbclient.issue", target, "success", audit.Host(gc.remote),
			"certificate for "+acct.Username+"@"+acct.Realm+", serial "+issued.SerialNumber.String()+", session "+sess.ID)
	})
	if err == nil && refusal != nil {
		err = refusal
	}
	if err != nil {
		tunnel.Refuse("pamd server: certificate request: %v", err).WriteTo(st)
		return
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tunnel.Refuse("pamd server: certificate request: %v", err).WriteTo(st)
		return
	}
	detail, _ := json.Marshal(tunnel.RenewalResult{Certificate: string(pki.EncodeCert(der)), ExpiresAt: cert.NotAfter})
	st.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := tunnel.OK().WriteTo(st); err != nil {
		return
	}
	(&tunnel.Message{Type: tunnel.MsgCertificate, Detail: detail}).WriteTo(st)
}
