package hub

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/store"
)

// A gateway's certificate lifecycle. The store keeps, per gateway, the
// serial of its newest certificate (CertSerial) and, after a renewal, the
// one the gateway held before (PrevSerial, until it connects with the new
// one); a connection with any other certificate is refused. Revoking clears
// both, and a replacing enrollment sets a new CertSerial alone: in both
// cases the connected gateway is cut at once.

var (
	errGatewayRevoked  = errors.New("the gateway's certificate was revoked: re-enroll it with a token from pamd gateways token --replace")
	errGatewayReplaced = errors.New("the certificate is not the current one for that gateway (replaced or renewed since)")
	errGatewayUnknown  = errors.New("no gateway of that name is enrolled")
	errGatewayOldCA    = errors.New("the gateway's certificate is from the gateway CA a rotation retired (pamd ca rotate complete): re-enroll it with a token from pamd gateways token --replace")
)

// accepted reports whether serial may connect as g.
func accepted(g *store.Gateway, serial string) bool {
	return serial != "" && (serial == g.CertSerial || serial == g.PrevSerial)
}

// admit checks a connecting gateway's certificate and returns the record
// it was checked against (its group is the one the gateway serves).
// Connecting with the newest certificate retires the one it renewed.
func (h *Hub) admit(name string, leaf *x509.Certificate) (*store.Gateway, error) {
	if h.cfg.CA.RetiredGatewayCert(leaf) {
		return nil, errGatewayOldCA
	}
	serial := leaf.SerialNumber.String()
	var g *store.Gateway
	err := h.st.View(func(tx *store.Tx) (err error) { g, err = tx.GatewayByName(name); return err })
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errGatewayUnknown
	case err != nil:
		return nil, fmt.Errorf("admit gateway: %w", err)
	case !accepted(g, serial) && !g.RevokedAt.IsZero() && g.CertSerial == "":
		return nil, errGatewayRevoked
	case !accepted(g, serial):
		return nil, errGatewayReplaced
	case serial != g.CertSerial || g.PrevSerial == "":
		return g, nil
	}
	err = h.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(name)
		if err != nil || g.CertSerial != serial || g.PrevSerial == "" {
			return err
		}
		g.PrevSerial = "" // the renewed certificate reached the gateway
		return tx.PutGateway(g)
	})
	if err != nil {
		return nil, fmt.Errorf("admit gateway: %w", err)
	}
	return g, nil
}

// Recheck cuts the named gateway's connection when its certificate is no
// longer accepted (revoked, or replaced by a new enrollment).
func (h *Hub) Recheck(name, reason string) {
	h.mu.Lock()
	gc, ok := h.gw[name]
	var serial string
	if ok {
		serial = gc.serial
	}
	h.mu.Unlock()
	if !ok {
		return
	}
	var g *store.Gateway
	err := h.st.View(func(tx *store.Tx) (err error) { g, err = tx.GatewayByName(name); return err })
	if err == nil && accepted(g, serial) {
		return
	}
	h.log.Warn("gateway cut", "gateway", name, "reason", reason)
	gc.sess.Close()
}

// CutRetiredGatewayCA closes the connections whose certificate (the one
// the connection holds now: its own, or its last renewal's) comes from
// the gateway CA a completed rotation retired (pamd ca rotate complete
// --type gateway): such a gateway must enrol again, and does not renew.
// It returns the gateways cut.
func (h *Hub) CutRetiredGatewayCA() []string {
	h.mu.Lock()
	var cut []*gatewayConn
	for _, gc := range h.gw {
		if gc.cert != nil && h.cfg.CA.RetiredGatewayCert(gc.cert) {
			cut = append(cut, gc)
		}
	}
	h.mu.Unlock()
	var names []string
	for _, gc := range cut {
		h.log.Warn("gateway cut", "gateway", gc.name, "reason", errGatewayOldCA.Error())
		gc.sess.Close()
		names = append(names, gc.name)
	}
	return names
}

// serveRenew issues a connected gateway a new certificate for a new key.
func (h *Hub) serveRenew(gc *gatewayConn, hdr *tunnel.Header, st *yamux.Stream) {
	defer st.Close()
	var req tunnel.Renewal
	if err := hdr.Decode(&req); err != nil {
		tunnel.Refuse("pamd server: malformed renewal").WriteTo(st)
		return
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		tunnel.Refuse("pamd server: renewal: %v", err).WriteTo(st)
		return
	}
	h.mu.Lock()
	connSerial, connCert, last := gc.serial, gc.cert, gc.renewed
	h.mu.Unlock()
	// A connection on a certificate from a retired gateway CA renews
	// nothing: the gateway enrols again.
	if connCert != nil && h.cfg.CA.RetiredGatewayCert(connCert) {
		h.log.Warn("gateway renewal refused", "gateway", gc.name, "err", errGatewayOldCA)
		tunnel.Refuse("pamd server: renewal: %v", errGatewayOldCA).WriteTo(st)
		return
	}
	// A gateway renews at half of the lifetime; more often is a loop.
	if time.Since(last) < h.cfg.CertLifetime/4 {
		tunnel.Refuse("pamd server: renewal: the certificate was renewed %s ago", time.Since(last).Round(time.Second)).WriteTo(st)
		return
	}
	var der []byte
	var cert *x509.Certificate
	var refusal error
	source := audit.Host(gc.remote)
	err = h.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(gc.name)
		if err != nil {
			return err
		}
		// Both the connection's certificate and the one the gateway says it
		// holds must still be accepted: a revoked gateway renews nothing.
		if connCert != nil && h.cfg.CA.RetiredGatewayCert(connCert) { // completed meanwhile
			refusal = errGatewayOldCA
			return audit.Append(tx, "gateway:"+g.Name, "gateway.renew", g.Name, "failure", source, refusal.Error())
		}
		if !accepted(g, connSerial) || !accepted(g, req.Serial) {
			refusal = errGatewayReplaced
			if !g.RevokedAt.IsZero() && g.CertSerial == "" {
				refusal = errGatewayRevoked
			}
			return audit.Append(tx, "gateway:"+g.Name, "gateway.renew", g.Name, "failure", source, refusal.Error())
		}
		if der, cert, err = h.cfg.CA.IssueGateway(tx, g.Name, csr.PublicKey, h.cfg.CertLifetime); err != nil {
			return err
		}
		g.PrevSerial, g.CertSerial, g.CertExpiresAt = req.Serial, cert.SerialNumber.String(), cert.NotAfter
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		return audit.Append(tx, "gateway:"+g.Name, "gateway.renew", g.Name, "success", source, "expires "+cert.NotAfter.UTC().Format(time.RFC3339))
	})
	if err == nil && refusal != nil {
		err = refusal
	}
	if err != nil {
		h.log.Warn("gateway renewal refused", "gateway", gc.name, "err", err)
		tunnel.Refuse("pamd server: renewal: %v", err).WriteTo(st)
		return
	}
	h.mu.Lock()
	gc.serial, gc.cert, gc.renewed = cert.SerialNumber.String(), cert, time.Now()
	h.mu.Unlock()
	gc.expiry.Reset(time.Until(cert.NotAfter))
	detail, _ := json.Marshal(tunnel.RenewalResult{Certificate: string(pki.EncodeCert(der)), ExpiresAt: cert.NotAfter, ServerCAs: h.serverPins()})
	tunnel.OK().WriteTo(st)
	(&tunnel.Message{Type: tunnel.MsgCertificate, Detail: detail}).WriteTo(st)
	h.log.Info("gateway certificate renewed", "gateway", gc.name, "expires", cert.NotAfter.UTC().Format(time.RFC3339))
}

// serverPins are the server CAs a gateway is to pin: the current one and,
// while it is rotated, the next.
func (h *Hub) serverPins() []string {
	cur, next := h.cfg.CA.ServerPins()
	if next == "" {
		return []string{cur}
	}
	return []string{cur, next}
}

// RenewAll asks every connected gateway to renew its certificate now, for
// the reason given (a CA rotation's step): the renewal comes from the
// gateway CA that issues now and names the server CAs to pin. The rate
// limit on renewals is lifted for each; it waits at most d for each
// gateway's reply (not for the renewal itself) and returns the gateways
// that did not take the request (offline since, or too old to know it).
func (h *Hub) RenewAll(ctx context.Context, reason string, d time.Duration) []string {
	h.mu.Lock()
	var names []string
	for name, gc := range h.gw {
		gc.renewed = time.Time{}
		names = append(names, name)
	}
	h.mu.Unlock()
	var mu sync.Mutex
	var missed []string
	var told sync.WaitGroup
	for _, name := range names {
		told.Add(1)
		go func() {
			defer told.Done()
			if err := h.tell(ctx, name, tunnel.KindRenewNow, tunnel.RenewNow{Reason: reason}, d); err != nil {
				h.log.Warn("gateway not told to renew", "gateway", name, "reason", reason, "err", err)
				mu.Lock()
				missed = append(missed, name)
				mu.Unlock()
			}
		}()
	}
	told.Wait()
	return missed
}
