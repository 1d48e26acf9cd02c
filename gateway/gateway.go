package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/printable"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// Backoff bounds between reconnection attempts; each wait is jittered ±20%.
const (
	backoffMin = 200 * time.Millisecond
	backoffMax = 2 * time.Second
)

// Run enrolls when needed, then serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	id := cfg.Identity
	if id == nil {
		var ok bool
		var err error
		if id, ok, err = LoadIdentity(cfg.DataDir); err != nil {
			return err
		}
		if ok {
			if err := id.CheckExpiry(time.Now()); err != nil {
				if cfg.Token == "" {
					cfg.Logger.Error("gateway cannot connect", "gateway", id.Name, "err", err)
					return err
				}
				cfg.Logger.Warn("certificate expired; enrolling again with --token", "gateway", id.Name)
				ok = false
			}
		}
		if !ok {
			if cfg.Token == "" {
				return fmt.Errorf("gateway: %s holds no enrollment: start once with --token (from pamd gateways token)", cfg.DataDir)
			}
			if id, err = Enroll(ctx, cfg.Token, cfg.Proxy); err != nil {
				return err
			}
			if err := id.Save(cfg.DataDir); err != nil {
				return err
			}
			cfg.Logger.Info("gateway enrolled", "name", id.Name, "server", id.ServerURL)
		} else if cfg.Token != "" {
			cfg.Logger.Info("already enrolled; ignoring --token", "name", id.Name)
		}
	}
	g, err := newGateway(id, cfg)
	if err != nil {
		return err
	}
	defer g.spool.close() // writes what is queued; the next start uploads it
	stopHealth, err := g.serveHealth(cfg.HealthListen)
	if err != nil {
		return err
	}
	defer stopHealth()
	// Expired sessions' state (MongoDB topologies) is dropped even if no
	// notice came. The sweeps stop, and are waited for, before the spool
	// closes, however loop ends.
	sweepCtx, stopSweeps := context.WithCancel(ctx)
	var sweeps sync.WaitGroup
	defer g.closeHandlers()
	defer sweeps.Wait()
	defer stopSweeps()
	sweeps.Add(1)
	go func() {
		defer sweeps.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				for _, h := range g.handlers {
					if sw, ok := h.(proxy.Sweeper); ok {
						sw.Sweep(now)
					}
				}
			case <-sweepCtx.Done():
				return
			}
		}
	}()
	return g.loop(ctx)
}

type gateway struct {
	id    *Identity
	cfg   Config
	log   *slog.Logger
	addr  string
	tls   *tls.Config
	creds *credentials // the client certificate, renewed over the tunnel
	// wg counts the streams the server opened (dials, probes, rotations,
	// notices); loop waits for them once a connection is over, before
	// Run closes the spool. session adds to it only in its accept loop,
	// so never while loop waits.
	wg     sync.WaitGroup
	spool  *spool
	health *health
	// handlers serve each protocol's streams, by descriptor Protocol.
	handlers map[string]proxy.Handler
	// current is the connection to the server while there is one
	// (certifyDBClient opens streams on it).
	current atomic.Pointer[yamux.Session]

	mu       sync.Mutex
	sessions map[string]map[*liveConn]bool // live connections by session
}

// liveConn is one proxied connection: cancel cuts it, done closes when its
// handler has returned.
type liveConn struct {
	cancel  context.CancelCauseFunc
	done    chan struct{}
	notices proxy.Notices // for the person at the client (see watched)
}

func newGateway(id *Identity, cfg Config) (*gateway, error) {
	u, err := url.Parse(id.ServerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("gateway: server URL %q in identity: %v", id.ServerURL, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	creds, err := newCredentials(id)
	if err != nil {
		return nil, err
	}
	tc := pki.PinnedClientConfig(id.Fingerprint, pki.ALPNGateway)
	tc.GetClientCertificate = creds.clientCertificate
	tc.VerifyPeerCertificate = creds.verifyServer // the pins renewals name (a CA rotation)
	sp, err := openSpool(cfg.DataDir, cfg.Logger.With("gateway", id.Name))
	if err != nil {
		return nil, err
	}
	g := &gateway{id: id, cfg: cfg, log: cfg.Logger.With("gateway", id.Name), addr: addr, tls: tc, creds: creds, spool: sp,
		sessions: map[string]map[*liveConn]bool{}}
	g.handlers = handlers(g.certifyDBClient)
	g.health = newHealth(g)
	return g, nil
}

// loop keeps a connection to the server, reconnecting after any loss.
func (g *gateway) loop(ctx context.Context) error {
	wait := backoffMin
	for {
		start := time.Now()
		err := g.session(ctx)
		if ctx.Err() != nil {
			g.wg.Wait()
			return nil
		}
		if err := g.expired(); err != nil {
			g.log.Error("gateway cannot connect", "err", err)
			g.wg.Wait()
			return err
		}
		if time.Since(start) > 10*time.Second {
			wait = backoffMin // it was up for a while: this is a fresh outage
		}
		jittered := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		g.log.Warn("connection to server lost; reconnecting", "err", err, "in", jittered.Round(time.Millisecond))
		select {
		case <-time.After(jittered):
		case <-ctx.Done():
			g.wg.Wait()
			return nil
		}
		wait = min(wait*2, backoffMax)
	}
}

// session runs one connection: dial, hello, then serve streams until it drops.
func (g *gateway) session(ctx context.Context) error {
	c, err := g.dialServer(ctx)
	if err != nil {
		return fmt.Errorf("dial %s: %w", g.addr, err)
	}
	sess, err := proxy.YamuxClient(c)
	if err != nil {
		c.Close()
		return err
	}
	// loops are the connection's renewal and record upload: they end
	// when it closes, and session returns only after them (the upload
	// uses the spool).
	var loops sync.WaitGroup
	defer loops.Wait()
	defer sess.Close()
	if err := g.hello(sess); err != nil {
		return err
	}
	g.current.Store(sess)
	defer g.current.CompareAndSwap(sess, nil)
	g.log.Info("connected to server", "server", g.addr)
	g.health.connected.Store(true)
	defer g.health.connected.Store(false)
	loops.Add(2)
	go func() {
		defer loops.Done()
		g.renewLoop(sess)
	}()
	go func() {
		defer loops.Done()
		g.sendRecords(sess)
	}()
	defer context.AfterFunc(ctx, func() { sess.Close() })()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if errors.Is(err, yamux.ErrSessionShutdown) {
				return errors.New("server closed the connection")
			}
			return err
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serveStream(ctx, st)
		}()
	}
}

func (g *gateway) hello(sess *yamux.Session) error {
	st, err := sess.OpenStream()
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := tunnel.NewHeader(tunnel.KindHello, tunnel.Hello{Name: g.id.Name, Version: g.cfg.Version, Group: g.cfg.Group})
	if err != nil {
		return err
	}
	if _, err := h.WriteTo(st); err != nil {
		return err
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	return r.Err()
}

// serveStream handles one stream the server opened.
func (g *gateway) serveStream(ctx context.Context, st *yamux.Stream) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr, err := tunnel.ReadHeader(st)
	if err != nil {
		g.log.Warn("malformed stream header; stream closed", "err", err)
		return
	}
	st.SetReadDeadline(time.Time{})
	switch hdr.Kind {
	case tunnel.KindDial:
		var d tunnel.Descriptor
		if hdr.Decode(&d) != nil {
			proxy.Answer(st, proxy.Refuse("pamd gateway: malformed descriptor"))
			return
		}
		g.dial(ctx, st, &d)
	case tunnel.KindProbe:
		var d tunnel.Descriptor
		if hdr.Decode(&d) != nil {
			proxy.Answer(st, proxy.Refuse("pamd gateway: malformed descriptor"))
			return
		}
		g.probe(ctx, st, &d)
	case tunnel.KindRotate:
		var r tunnel.Rotation
		if hdr.Decode(&r) != nil {
			proxy.Answer(st, proxy.Refuse("pamd gateway: malformed rotation"))
			return
		}
		g.rotate(ctx, st, &r)
	case tunnel.KindNotice:
		var e tunnel.Ended
		if hdr.Decode(&e) == nil {
			g.endSession(e.SessionID, e.Reason)
		}
		proxy.Answer(st, nil)
	case tunnel.KindRenewNow: // a CA rotation's step (renew.go)
		g.creds.renewSoon()
		proxy.Answer(st, nil)
	case tunnel.KindWatch:
		var w tunnel.Watched
		if hdr.Decode(&w) != nil {
			proxy.Answer(st, proxy.Refuse("pamd gateway: malformed watch notice"))
			return
		}
		g.watched(w.SessionID, w.Watcher)
		proxy.Answer(st, nil)
	default:
		proxy.Answer(st, proxy.Refuse("pamd gateway: cannot serve a %s stream", hdr.Kind))
	}
}

// dial serves one proxied connection under the session's expiry.
func (g *gateway) dial(ctx context.Context, st *yamux.Stream, d *tunnel.Descriptor) {
	if !time.Now().Before(d.ExpiresAt) {
		proxy.Answer(st, proxy.Refuse("pamd: session %s expired", d.SessionID))
		return
	}
	// The gateway enforces expiry itself too: the server may be gone.
	dctx, cancelDeadline := context.WithDeadline(ctx, d.ExpiresAt)
	defer cancelDeadline()
	sctx, cancel := context.WithCancelCause(dctx)
	defer cancel(nil)
	lc := &liveConn{cancel: cancel, done: make(chan struct{})}
	g.track(d.SessionID, lc)
	defer g.untrack(d.SessionID, lc)
	sctx = proxy.WithNotices(sctx, &lc.notices)

	start := time.Now()
	h, ok := g.handlers[d.Protocol]
	if !ok {
		proxy.Answer(st, proxy.Refuse("pamd gateway %s does not support protocol %q (upgrade the gateway)", g.id.Name, d.Protocol))
		return
	}
	var rec proxy.Recorder
	if d.Record {
		rec = g.spool.add
	}
	defer g.health.connection(d.Protocol)()
	err := h.Handle(sctx, st, d, rec)
	g.logClosed(d, time.Since(start), err, sctx.Err() != nil)
}

// logClosed logs the end of a proxied connection. A gateway serves
// thousands, so an end that is no failure (a clean close, or a cut because
// the session ended or expired, logged once for the session) is DEBUG;
// a handler's error is INFO.
func (g *gateway) logClosed(d *tunnel.Descriptor, took time.Duration, err error, cut bool) {
	level := slog.LevelDebug
	if err != nil && !cut {
		level = slog.LevelInfo
	}
	g.log.Log(context.Background(), level, "connection closed", "conn", d.String(), "duration", took.Round(time.Millisecond), "err", err)
}

func (g *gateway) probe(ctx context.Context, st *yamux.Stream, d *tunnel.Descriptor) {
	p, ok := g.handlers[d.Protocol].(proxy.Prober)
	if !ok {
		proxy.Answer(st, proxy.Refuse("pamd gateway: no probe for protocol %q", d.Protocol))
		return
	}
	res, err := p.Probe(ctx, d)
	if res == nil {
		res = &tunnel.ProbeResult{}
	}
	if err != nil {
		res.Error = err.Error()
	}
	detail, _ := json.Marshal(res)
	proxy.Answer(st, nil)
	(&tunnel.Message{Type: tunnel.MsgProbeResult, Detail: detail}).WriteTo(st)
}

func (g *gateway) track(session string, lc *liveConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[session] == nil {
		g.sessions[session] = map[*liveConn]bool{}
	}
	g.sessions[session][lc] = true
}

func (g *gateway) untrack(session string, lc *liveConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.sessions[session], lc)
	if len(g.sessions[session]) == 0 {
		delete(g.sessions, session)
	}
	close(lc.done)
}

// endSession cuts a session's connections, telling their clients why, and
// waits (briefly) until they are cut, so the server cuts the path only after
// the message went out.
func (g *gateway) endSession(session, reason string) {
	g.mu.Lock()
	var conns []*liveConn
	for lc := range g.sessions[session] {
		lc.cancel(errors.New(reason))
		conns = append(conns, lc)
	}
	g.mu.Unlock()
	g.log.Info("session ended by the server", "session", session, "reason", reason, "connections", len(conns))
	for _, h := range g.handlers {
		if se, ok := h.(proxy.SessionEnder); ok {
			se.EndSession(session)
		}
	}
	deadline := time.After(400 * time.Millisecond)
	for _, lc := range conns {
		select {
		case <-lc.done:
		case <-deadline:
			return
		}
	}
}

// closeHandlers drops the state handlers hold across connections, once
// the last stream ended and the sweeps stopped.
func (g *gateway) closeHandlers() {
	for _, h := range g.handlers {
		if c, ok := h.(proxy.Closer); ok {
			c.Close()
		}
	}
}

// watched tells the person on each of the session's connections that
// watcher watches them live, as their handler can (a terminal shows it).
func (g *gateway) watched(session, watcher string) {
	g.mu.Lock()
	conns := make([]*liveConn, 0, len(g.sessions[session]))
	for lc := range g.sessions[session] {
		conns = append(conns, lc)
	}
	g.mu.Unlock()
	msg := printable.Escape(watcher) + " is watching this session live (read-only)"
	for _, lc := range conns {
		lc.notices.Post(msg)
	}
}

// uploadBackoffMax bounds the wait before a failed upload is retried.
const uploadBackoffMax = 30 * time.Second

// sendRecords uploads spooled records until the connection drops. After a
// failure it logs, waits (with backoff) and opens a new record stream: what
// is not acknowledged stays in the spool and goes again.
func (g *gateway) sendRecords(sess *yamux.Session) {
	wait := backoffMin
	for {
		progressed, err := g.uploadRecords(sess)
		if sess.IsClosed() {
			return
		}
		if progressed {
			wait = backoffMin
		}
		b := g.spool.backlog()
		g.health.uploads.Inc()
		g.log.Warn("record upload failed; retrying", "err", err, "in", wait, "backlog_records", b.Records, "backlog_bytes", b.Bytes)
		select {
		case <-time.After(wait):
		case <-sess.CloseChan():
			return
		}
		wait = min(wait*2, uploadBackoffMax)
	}
}

// uploadRecords runs one record stream: it sends batches, each once the
// last is acknowledged, and reports the spool's backlog whenever it
// changed. It returns why it stopped, and whether any batch was stored.
func (g *gateway) uploadRecords(sess *yamux.Session) (progressed bool, err error) {
	st, err := sess.OpenStream()
	if err != nil {
		return false, fmt.Errorf("upload records: open stream: %w", err)
	}
	defer st.Close()
	h, err := tunnel.NewHeader(tunnel.KindRecord, tunnel.Hello{Name: g.id.Name, Version: g.cfg.Version})
	if err != nil {
		return false, fmt.Errorf("upload records: %w", err)
	}
	if _, err := h.WriteTo(st); err != nil {
		return false, fmt.Errorf("upload records: %w", err)
	}
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		return false, fmt.Errorf("upload records: server refused the record stream: %w", err)
	}
	st.SetReadDeadline(time.Time{})
	var reported *tunnel.Backlog
	report := func() error {
		b := g.spool.backlog()
		if reported != nil && *reported == b {
			return nil
		}
		detail, _ := json.Marshal(b)
		if _, err := (&tunnel.Message{Type: tunnel.MsgBacklog, Detail: detail}).WriteTo(st); err != nil {
			return fmt.Errorf("upload records: report backlog: %w", err)
		}
		reported = &b
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := report(); err != nil {
			return progressed, err
		}
		batch := g.spool.batch(tunnel.MaxMessageBody)
		if len(batch) == 0 {
			select {
			case <-g.spool.wake:
				// Linger so a typing burst goes as one batch: each batch is a
				// synced write on the server, and the spool already has it.
				select {
				case <-time.After(g.cfg.RecordBatchDelay):
				case <-sess.CloseChan():
					return progressed, errors.New("upload records: connection closed")
				}
			case <-tick.C:
			case <-sess.CloseChan():
				return progressed, errors.New("upload records: connection closed")
			}
			continue
		}
		detail, err := json.Marshal(batch)
		if err != nil {
			return progressed, fmt.Errorf("upload records: encode %d records: %w", len(batch), err)
		}
		if _, err := (&tunnel.Message{Type: tunnel.MsgRecords, Detail: detail}).WriteTo(st); err != nil {
			return progressed, fmt.Errorf("upload records: send %d records (%d bytes): %w", len(batch), len(detail), err)
		}
		st.SetReadDeadline(time.Now().Add(30 * time.Second))
		m, err := tunnel.ReadMessage(st)
		st.SetReadDeadline(time.Time{})
		if err != nil {
			return progressed, fmt.Errorf("upload records: acknowledgement of %d records: %w", len(batch), err)
		}
		if m.Type != tunnel.MsgAck {
			return progressed, fmt.Errorf("upload records: server did not store %d records: %s %s", len(batch), m.Type, m.Reason)
		}
		var ack struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(m.Detail, &ack); err != nil {
			return progressed, fmt.Errorf("upload records: malformed acknowledgement: %w", err)
		}
		if err := g.spool.ack(ack.Seq); err != nil {
			g.log.Warn("spool: recording the acknowledgement failed", "err", err)
		}
		progressed = true
	}
}
