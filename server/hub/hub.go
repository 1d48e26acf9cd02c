package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/server/streams"
	"github.com/pamd/pamd/store"
)

// Config is what the hub needs of the server.
type Config struct {
	Store *store.Store
	Log   *slog.Logger
	// CA issues renewed gateway certificates, valid for CertLifetime.
	CA           *ca.Authority
	CertLifetime time.Duration
	// DBClientCRLURL is the CRL distribution point of the db-client
	// certificates the hub signs for gateways' PKINIT logins (dbcert.go).
	DBClientCRLURL string
	// Streams caps the streams a gateway has open at once (record and
	// renewal streams, a few at a time).
	Streams int
	// OnConnect runs when a gateway connects (rotations waiting for it
	// look again); it must not block.
	OnConnect func()
	Metrics   *metrics.M
}

// Hub keeps the connected gateways.
type Hub struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	trail audit.Trail
	mu    sync.Mutex
	gw    map[string]*gatewayConn
	// opened is the gateway each recent connection's dial stream went to
	// (groups.go).
	opened openedLog
}

type gatewayConn struct {
	name    string
	version string
	group   string // the gateway group its store record named at admission, if any
	remote  string
	since   time.Time
	sess    *yamux.Session
	// serial is the newest certificate issued to this connection (its own,
	// then each renewal's) and renewed when, guarded by hub.mu; expiry
	// closes the connection when that certificate expires.
	serial  string
	cert    *x509.Certificate // the certificate serial names (certs.go)
	renewed time.Time
	expiry  *time.Timer
	// backlog is what the gateway last reported its spool holds (on a
	// record stream), guarded by hub.mu.
	backlog *tunnel.Backlog
}

// New is a hub with no gateway connected yet.
func New(cfg Config) *Hub {
	if cfg.OnConnect == nil {
		cfg.OnConnect = func() {}
	}
	return &Hub{cfg: cfg, st: cfg.Store, log: cfg.Log, trail: audit.Trail{St: cfg.Store, Log: cfg.Log}, gw: map[string]*gatewayConn{}}
}

// States is every enrolled gateway's state, for metrics.
func (h *Hub) States() []metrics.Gateway {
	var out []metrics.Gateway
	h.st.View(func(tx *store.Tx) error {
		all, err := tx.Gateways()
		for _, g := range all {
			state := metrics.Gateway{Name: g.Name, LastSeen: g.LastSeen}
			if state.Online = h.Online(g.Name); state.Online {
				state.LastSeen = time.Now()
				if b := h.Backlog(g.Name); b != nil {
					state.BacklogRecords, state.BacklogBytes = int64(b.Records), int64(b.Bytes)
				}
			}
			out = append(out, state)
		}
		return err
	})
	return out
}

// Online says whether the named gateway is connected.
func (h *Hub) Online(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.gw[name]
	return ok && !g.sess.IsClosed()
}

// setBacklog keeps what the named gateway reports its spool still holds.
func (h *Hub) setBacklog(name string, b tunnel.Backlog) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.gw[name]; ok {
		g.backlog = &b
	}
}

// Backlog returns the connected gateway's last reported backlog, or nil.
func (h *Hub) Backlog(name string) *api.GatewayBacklog {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.gw[name]
	if !ok || g.backlog == nil || g.sess.IsClosed() {
		return nil
	}
	return &api.GatewayBacklog{Records: g.backlog.Records, Bytes: g.backlog.Bytes}
}

// Open starts a stream to the named gateway.
func (h *Hub) Open(name string) (*yamux.Stream, error) {
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

// Serve runs one gateway's connection until it drops.
func (h *Hub) Serve(ctx context.Context, c *tls.Conn) {
	remote := c.RemoteAddr().String()
	leaf := c.ConnectionState().PeerCertificates[0]
	name := leaf.Subject.CommonName
	sess, err := proxy.YamuxServer(c)
	if err != nil {
		return
	}
	defer sess.Close()

	// The gateway's first stream says hello.
	st, err := streams.AcceptWithin(sess, 10*time.Second)
	if err != nil {
		h.log.Warn("gateway sent no hello", "gateway", name, "err", err)
		return
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr, err := tunnel.ReadHeader(st)
	var hello tunnel.Hello
	if err != nil || hdr.Kind != tunnel.KindHello || hdr.Decode(&hello) != nil {
		h.log.Warn("gateway hello malformed", "gateway", name, "err", err)
		return
	}
	// Only the gateway's current certificate gets in; the refusal says why
	// in the gateway's log.
	group, err := h.admitHello(name, leaf, hello)
	if err != nil {
		h.log.Warn("gateway refused", "gateway", name, "remote", remote, "err", err)
		h.trail.Event("gateway:"+name, "gateway.connect", name, "failure", audit.Host(remote), err.Error())
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

	gc := &gatewayConn{name: name, version: hello.Version, group: group, remote: remote, since: time.Now().UTC(), sess: sess, serial: leaf.SerialNumber.String(), cert: leaf,
		expiry: time.AfterFunc(time.Until(leaf.NotAfter), func() { sess.Close() })}
	defer gc.expiry.Stop()
	h.mu.Lock()
	if old, ok := h.gw[name]; ok {
		old.sess.Close() // a reconnect replaces a half-dead connection
	}
	h.gw[name] = gc
	h.mu.Unlock()
	h.Recheck(name, "certificate revoked") // a revocation while this one was being admitted
	h.RecheckGroup(name)                   // a group change while this one was being admitted
	h.touch(name, gc, true)
	h.log.Info("gateway connected", "gateway", name, "version", hello.Version, "group", group, "remote", remote)
	h.cfg.OnConnect()

	// Gateways open record streams; anything else is refused. open
	// counts the accept loop and each stream's goroutine: the connection
	// is not done (nor the store closed) until they are. The loop holds
	// its count while it adds the streams'.
	var open sync.WaitGroup
	defer open.Wait()
	defer sess.Close() // before the Wait: it ends the streams
	open.Add(1)
	go func() {
		defer open.Done()
		streams.AcceptEach(sess, make(chan struct{}, h.cfg.Streams), &open, func(st *yamux.Stream) {
			st.SetReadDeadline(time.Now().Add(10 * time.Second))
			hdr, err := tunnel.ReadHeader(st)
			st.SetReadDeadline(time.Time{})
			if err == nil && hdr.Kind == tunnel.KindRenew {
				h.serveRenew(gc, hdr, st)
				return
			}
			if err == nil && hdr.Kind == tunnel.KindDBCert {
				h.serveDBCert(gc, hdr, st)
				return
			}
			if err != nil || hdr.Kind != tunnel.KindRecord {
				tunnel.Refuse("pamd server: unexpected stream from gateway").WriteTo(st)
				st.Close()
				return
			}
			h.serveRecords(name, st)
		})
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
	h.log.Info("gateway disconnected", "gateway", name, "remote", remote)
}

// admitHello is admit, and the gateway's group: the one the admin put it
// in on its record (pamd gateways token --group, pamd gateways set
// --group), never the one its hello claims. A hello naming no group is
// accepted (older gateways, or one not told its group) and the gateway
// serves its stored group all the same; a hello naming another group is
// refused, so that a misconfigured gateway says so rather than serving a
// group nobody meant.
func (h *Hub) admitHello(name string, leaf *x509.Certificate, hello tunnel.Hello) (group string, err error) {
	if hello.Group != "" {
		if err := api.ValidName("gateway group", hello.Group); err != nil {
			return "", err
		}
	}
	g, err := h.admit(name, leaf)
	if err != nil {
		return "", err
	}
	if hello.Group != "" && hello.Group != g.Group {
		return "", groupMismatch(name, g.Group, hello.Group)
	}
	return g.Group, nil
}

// storedGroup is the group on the named gateway's record.
func (h *Hub) storedGroup(name string) (string, error) {
	var g *store.Gateway
	err := h.st.View(func(tx *store.Tx) (err error) { g, err = tx.GatewayByName(name); return err })
	if errors.Is(err, store.ErrNotFound) {
		return "", errGatewayUnknown
	}
	if err != nil {
		return "", fmt.Errorf("admit gateway: %w", err)
	}
	return g.Group, nil
}

// groupMismatch is the refusal of a hello claiming a group the gateway's
// record does not name.
func groupMismatch(name, stored, claimed string) error {
	in := "in group " + stored
	if stored == "" {
		in = "in no group"
	}
	return fmt.Errorf("gateway %s is %s on the server, not %s: run pamd gateways set %s --group %s, or fix PAMD_GATEWAY_GROUP", name, in, claimed, name, claimed)
}

// touch records a connect or disconnect on the gateway's record and in the audit log.
func (h *Hub) touch(name string, gc *gatewayConn, connected bool) {
	action := "gateway.disconnect"
	if connected {
		action = "gateway.connect"
	}
	err := h.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Removed while connected (pamd gateways remove --force): the
			// event stays, the record is gone.
		case err != nil:
			return err
		default:
			g.LastSeen, g.Version, g.RemoteAddr = time.Now().UTC(), gc.version, gc.remote
			if err := tx.PutGateway(g); err != nil {
				return err
			}
		}
		return audit.Append(tx, "gateway:"+name, action, name, "success", audit.Host(gc.remote), "version "+gc.version)
	})
	if err != nil {
		h.log.Error("record gateway state", "gateway", name, "err", err)
	}
}

// Notice tells the gateways of a session that it ended: those that served
// its connections (their records name them, even if the resource has moved
// since) and those serving res now (its gateway, or each of its group's
// connected), waiting at most d (and until ctx ends) for them to
// acknowledge.
func (h *Hub) Notice(ctx context.Context, res *store.Resource, sessionID, reason string, d time.Duration) {
	h.tellAll(ctx, res, sessionID, tunnel.KindNotice, tunnel.Ended{SessionID: sessionID, Reason: reason}, d)
}

// Watched tells the gateways of a session (as Notice) that watcher began
// watching it live, so that they tell the session's terminals; it waits at
// most d. The error counts only the gateways serving the session's live
// connections, where its terminals are (a gateway of the group with none
// of them failing does not matter); with no live connection, any gateway
// told is enough.
func (h *Hub) Watched(ctx context.Context, res *store.Resource, sessionID, watcher string, d time.Duration) error {
	return h.tellAll(ctx, res, sessionID, tunnel.KindWatch, tunnel.Watched{SessionID: sessionID, Watcher: watcher}, d)
}

// sessionGateways is the connected gateways named by the session's
// connection records, and of them those serving a connection still open.
func (h *Hub) sessionGateways(sessionID string) (all, live map[string]bool) {
	all, live = map[string]bool{}, map[string]bool{}
	h.st.View(func(tx *store.Tx) error {
		conns, err := tx.Connections(sessionID)
		for _, c := range conns {
			if c.Gateway == "" {
				continue
			}
			all[c.Gateway] = true
			if c.EndedAt.IsZero() {
				live[c.Gateway] = true
			}
		}
		return err
	})
	return all, live
}

// tellAll is tell to each gateway of the session at once (the union of
// its connections' gateways and those serving res now). The error is
// that of the gateways serving its live connections, if any; else nil
// once one was told.
func (h *Hub) tellAll(ctx context.Context, res *store.Resource, sessionID string, kind tunnel.Kind, body any, d time.Duration) error {
	served, live := h.sessionGateways(sessionID)
	names := h.Serving(res)
	for name := range served {
		if !slices.Contains(names, name) && h.Online(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		if res.GatewayGroup == "" {
			return fmt.Errorf("gateway %s is offline", res.Gateway)
		}
		return noGatewayOf(res.GatewayGroup)
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.tell(ctx, name, kind, body, d)
		}()
	}
	wg.Wait()
	var counted []error
	told := false
	for i, name := range names {
		told = told || errs[i] == nil
		if live[name] {
			counted = append(counted, errs[i])
		}
	}
	if len(live) > 0 {
		for name := range live {
			if !slices.Contains(names, name) {
				counted = append(counted, fmt.Errorf("gateway %s is offline", name))
			}
		}
		return errors.Join(counted...)
	}
	if told {
		return nil
	}
	return errors.Join(errs...)
}

// tell opens a stream of kind to a gateway with body and waits at most d
// (and until ctx ends) for its reply.
func (h *Hub) tell(ctx context.Context, gateway string, kind tunnel.Kind, body any, d time.Duration) error {
	st, err := h.Open(gateway)
	if err != nil {
		return err
	}
	defer st.Close()
	hdr, err := tunnel.NewHeader(kind, body)
	if err != nil {
		return err
	}
	st.SetDeadline(time.Now().Add(d))
	defer streams.CutOnDone(ctx, st)()
	if _, err := hdr.WriteTo(st); err != nil {
		return err
	}
	rep, err := tunnel.ReadReply(st)
	if err == nil && rep.Status != tunnel.StatusOK {
		err = errors.New(rep.Message)
	}
	return err
}
