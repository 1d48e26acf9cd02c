package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// hub keeps the connected gateways.
type hub struct {
	s  *Server
	mu sync.Mutex
	gw map[string]*gatewayConn
}

type gatewayConn struct {
	name    string
	version string
	remote  string
	since   time.Time
	sess    *yamux.Session
	// serial is the newest certificate issued to this connection (its own,
	// then each renewal's) and renewed when, guarded by hub.mu; expiry
	// closes the connection when that certificate expires.
	serial  string
	renewed time.Time
	expiry  *time.Timer
	// backlog is what the gateway last reported its spool holds (on a
	// record stream), guarded by hub.mu.
	backlog *tunnel.Backlog
}

func newHub(s *Server) *hub { return &hub{s: s, gw: map[string]*gatewayConn{}} }

func (h *hub) online(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.gw[name]
	return ok && !g.sess.IsClosed()
}

// setBacklog keeps what the named gateway reports its spool still holds.
func (h *hub) setBacklog(name string, b tunnel.Backlog) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.gw[name]; ok {
		g.backlog = &b
	}
}

// backlogOf returns the connected gateway's last reported backlog, or nil.
func (h *hub) backlogOf(name string) *api.GatewayBacklog {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.gw[name]
	if !ok || g.backlog == nil || g.sess.IsClosed() {
		return nil
	}
	return &api.GatewayBacklog{Records: g.backlog.Records, Bytes: g.backlog.Bytes}
}

// open starts a stream to the named gateway.
func (h *hub) open(name string) (*yamux.Stream, error) {
	h.mu.Lock()
	g, ok := h.gw[name]
	h.mu.Unlock()
	if !ok || g.sess.IsClosed() {
		return nil, fmt.Errorf("gateway %s is offline", name)
	}
	st, err := g.sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", name, err)
	}
	return st, nil
}

// serveGateway runs one gateway's connection until it drops.
func (h *hub) serveGateway(ctx context.Context, c *tls.Conn) {
	s := h.s
	remote := c.RemoteAddr().String()
	leaf := c.ConnectionState().PeerCertificates[0]
	name := leaf.Subject.CommonName
	sess, err := proxy.YamuxServer(c)
	if err != nil {
		return
	}
	defer sess.Close()

	// The gateway's first stream says hello.
	st, err := acceptWithin(sess, 10*time.Second)
	if err != nil {
		s.log.Warn("gateway sent no hello", "gateway", name, "err", err)
		return
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr, err := tunnel.ReadHeader(st)
	var hello tunnel.Hello
	if err != nil || hdr.Kind != tunnel.KindHello || hdr.Decode(&hello) != nil {
		s.log.Warn("gateway hello malformed", "gateway", name, "err", err)
		return
	}
	// Only the gateway's current certificate gets in; the refusal says why
	// in the gateway's log.
	if err := h.admit(name, leaf.SerialNumber.String()); err != nil {
		s.log.Warn("gateway refused", "gateway", name, "remote", remote, "err", err)
		s.auditEvent("gateway:"+name, "gateway.connect", name, "failure", hostOf(remote), err.Error())
		tunnel.Refuse("pamd server: gateway %s refused: %v", name, err).WriteTo(st)
		st.Close()
		select { // until the gateway read it and hung up
		case <-sess.CloseChan():
		case <-time.After(2 * time.Second):
		}
		return
	}
	tunnel.OK().WriteTo(st)
	st.Close()

	gc := &gatewayConn{name: name, version: hello.Version, remote: remote, since: time.Now().UTC(), sess: sess, serial: leaf.SerialNumber.String(),
		expiry: time.AfterFunc(time.Until(leaf.NotAfter), func() { sess.Close() })}
	defer gc.expiry.Stop()
	h.mu.Lock()
	if old, ok := h.gw[name]; ok {
		old.sess.Close() // a reconnect replaces a half-dead connection
	}
	h.gw[name] = gc
	h.mu.Unlock()
	h.recheck(name, "certificate revoked") // a revocation while this one was being admitted
	h.touch(name, gc, true)
	s.log.Info("gateway connected", "gateway", name, "version", hello.Version, "remote", remote)
	s.rot.poke()

	// Gateways open record streams; anything else is refused. streams
	// counts the accept loop and each stream's goroutine: the connection
	// is not done (nor the store closed) until they are. The loop holds
	// its count while it adds the streams'.
	var streams sync.WaitGroup
	defer streams.Wait()
	defer sess.Close() // before the Wait: it ends the streams
	streams.Add(1)
	go func() {
		defer streams.Done()
		slots := make(chan struct{}, s.lim.gatewayStreams)
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			if !takeSlot(slots, st) {
				continue
			}
			streams.Add(1)
			go func() {
				defer streams.Done()
				defer func() { <-slots }()
				st.SetReadDeadline(time.Now().Add(10 * time.Second))
				hdr, err := tunnel.ReadHeader(st)
				st.SetReadDeadline(time.Time{})
				if err == nil && hdr.Kind == tunnel.KindRenew {
					h.serveRenew(gc, hdr, st)
					return
				}
				if err != nil || hdr.Kind != tunnel.KindRecord {
					tunnel.Refuse("pamd server: unexpected stream from gateway").WriteTo(st)
					st.Close()
					return
				}
				h.serveRecords(name, st)
			}()
		}
	}()
	select {
	case <-sess.CloseChan():
	case <-ctx.Done():
	}
	h.mu.Lock()
	if h.gw[name] == gc {
		delete(h.gw, name)
	}
	h.mu.Unlock()
	h.touch(name, gc, false)
	s.log.Info("gateway disconnected", "gateway", name, "remote", remote)
}

// touch records a connect or disconnect on the gateway's record and in the audit log.
func (h *hub) touch(name string, gc *gatewayConn, connected bool) {
	action := "gateway.disconnect"
	if connected {
		action = "gateway.connect"
	}
	err := h.s.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(name)
		if err != nil {
			return err
		}
		g.LastSeen, g.Version, g.RemoteAddr = time.Now().UTC(), gc.version, gc.remote
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		return appendAudit(tx, "gateway:"+name, action, name, "success", hostOf(gc.remote), "version "+gc.version)
	})
	if err != nil {
		h.s.log.Error("record gateway state", "gateway", name, "err", err)
	}
}

// acceptWithin accepts the session's first stream, closing the session if
// none comes within d.
func acceptWithin(sess *yamux.Session, d time.Duration) (*yamux.Stream, error) {
	t := time.AfterFunc(d, func() { sess.Close() })
	st, err := sess.AcceptStream()
	if !t.Stop() {
		if err == nil {
			st.Close()
		}
		return nil, fmt.Errorf("no stream within %s", d)
	}
	return st, err
}

// cutOnDone makes st's blocked and later reads and writes fail once ctx
// ends; the returned func stops that.
func cutOnDone(ctx context.Context, st *yamux.Stream) (stop func() bool) {
	return context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (s *Server) handleListGateways(w http.ResponseWriter, r *http.Request) error {
	out := []api.Gateway{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Gateways()
		for _, g := range all {
			v := api.Gateway{Name: g.Name, Version: g.Version, RemoteAddr: g.RemoteAddr, LastSeen: g.LastSeen, EnrolledAt: g.EnrolledAt,
				CertExpiresAt: g.CertExpiresAt, RevokedAt: g.RevokedAt}
			if s.hub.online(g.Name) {
				v.Online, v.LastSeen = true, time.Now().UTC()
				v.Backlog = s.hub.backlogOf(g.Name)
			}
			out = append(out, v)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// notice tells a gateway that a session ended, waiting at most d (and
// until ctx ends) for it to acknowledge.
func (h *hub) notice(ctx context.Context, gateway, sessionID, reason string, d time.Duration) {
	st, err := h.open(gateway)
	if err != nil {
		return
	}
	defer st.Close()
	hdr, err := tunnel.NewHeader(tunnel.KindNotice, tunnel.Ended{SessionID: sessionID, Reason: reason})
	if err != nil {
		return
	}
	st.SetDeadline(time.Now().Add(d))
	defer cutOnDone(ctx, st)()
	if _, err := hdr.WriteTo(st); err == nil {
		tunnel.ReadReply(st)
	}
}
