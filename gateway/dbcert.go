package gateway

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
)

// certifyDBClient asks the server, over a dbcert stream of the current
// connection, to sign a certificate request for a PKINIT login of a
// session's connection (mssqlproxy.Certifier). The key stays here.
func (g *gateway) certifyDBClient(ctx context.Context, sessionID string, csrDER []byte) ([]byte, error) {
	sess := g.current.Load()
	if sess == nil || sess.IsClosed() {
		return nil, errors.New("the gateway is not connected to the server")
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})
	h, err := tunnel.NewHeader(tunnel.KindDBCert, tunnel.DBClientCertRequest{SessionID: sessionID, CSR: string(csr)})
	if err != nil {
		return nil, err
	}
	st, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("open a stream to the server: %w", err)
	}
	defer st.Close()
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	if _, err := h.WriteTo(st); err != nil {
		return nil, err
	}
	r, err := tunnel.ReadReply(st)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return nil, err
	}
	m, err := tunnel.ReadMessage(st)
	if err != nil {
		return nil, err
	}
	var res tunnel.RenewalResult
	if m.Type != tunnel.MsgCertificate || json.Unmarshal(m.Detail, &res) != nil {
		return nil, fmt.Errorf("unexpected answer %q", m.Type)
	}
	return []byte(res.Certificate), nil
}
