package relay

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/server/streams"
	"github.com/pamd/pamd/store"
)

// Gateways is what the relay needs of the gateway hub.
type Gateways interface {
	// OpenFor starts a stream to a gateway that serves res (its gateway,
	// or one of its group's) for the connection connectionID and names
	// that gateway; the hub keeps records of the connection from it only.
	OpenFor(res *store.Resource, connectionID string) (*yamux.Stream, string, error)
}

// Config is what the relay needs of the server.
type Config struct {
	Store    *store.Store
	Log      *slog.Logger
	Sessions *sessions.Live
	Gateways Gateways
	Kinds    *kind.Set
	// AuthTimeout: a connection's first stream must have authenticated
	// this long after the TLS handshake; until then it may open no second
	// stream.
	AuthTimeout time.Duration
	// Streams caps the streams open at once on one authenticated
	// connection: one per proxied connection, all over one tunnel (the
	// benchmarks hold thousands), so it is generous.
	Streams int
	Metrics *metrics.M
}

// Relay serves pamd connect's tunnels.
type Relay struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	live  *sessions.Live
	trail audit.Trail
	conns *connLog
	// catalog answers a new connection's resource and account from memory.
	catalog *catalog
}

// New is a relay.
func New(cfg Config) *Relay {
	return &Relay{cfg: cfg, st: cfg.Store, log: cfg.Log, live: cfg.Sessions, trail: audit.Trail{St: cfg.Store, Log: cfg.Log},
		conns: newConnLog(cfg.Store, cfg.Log), catalog: &catalog{st: cfg.Store}}
}

// Start starts writing connection records in the background; Stop
// commits the last of them. The server starts it before it serves and
// stops it after the last connection ended, before the store closes.
func (s *Relay) Start() { s.conns.start() }

// Stop ends what Start started, committing every record put before.
func (s *Relay) Stop() { s.conns.stop() }

// Serve runs one pamd connect tunnel: a yamux session whose streams
// are either a session's control stream or one proxied connection each.
//
// The first stream authenticates the connection (pamd connect opens its
// control stream and waits for the answer before anything else). It must
// do so within AuthTimeout of the handshake; until it has, the gate
// lets the client open no other stream, and a connection whose first
// stream is refused is closed. authenticated gives back the connection's
// unauthenticated slot (see dispatch).
func (s *Relay) Serve(ctx context.Context, c net.Conn, authenticated func()) {
	remote := c.RemoteAddr().String()
	deadline := time.Now().Add(s.cfg.AuthTimeout)
	sess, gate, err := proxy.YamuxServerGated(c)
	if err != nil {
		return
	}
	// open counts the connection's stream goroutines: it is not done
	// (nor the store closed) until they are. Closing the session, first,
	// ends them.
	var open sync.WaitGroup
	defer open.Wait()
	defer sess.Close()
	defer context.AfterFunc(ctx, func() { sess.Close() })()
	first, err := streams.AcceptWithin(sess, s.cfg.AuthTimeout)
	if err != nil {
		s.log.Debug("tunnel connection opened no stream in time; closed", "remote", remote, "err", err)
		return
	}
	first.SetReadDeadline(deadline)
	kind, ss, ls, ok := s.authStream(first, remote)
	if !ok {
		first.Close()
		return
	}
	gate.Open()
	authenticated()

	slots := make(chan struct{}, s.cfg.Streams)
	slots <- struct{}{}
	open.Add(1)
	go func() {
		defer open.Done()
		defer func() { <-slots }()
		s.serveStream(ctx, first, kind, ss, ls, remote)
	}()
	streams.AcceptEach(sess, slots, &open, func(st *yamux.Stream) {
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		kind, ss, ls, ok := s.authStream(st, remote)
		if !ok {
			st.Close()
			return
		}
		s.serveStream(ctx, st, kind, ss, ls, remote)
	})
}

// authStream reads a client stream's header, under the read deadline the
// caller set, and checks its session. When it fails it has refused the
// stream.
func (s *Relay) authStream(st *yamux.Stream, remote string) (tunnel.Kind, *store.Session, *sessions.Active, bool) {
	hdr, err := tunnel.ReadHeader(st)
	if err != nil {
		s.log.Warn("malformed tunnel header; stream closed", "remote", remote, "err", err)
		tunnel.Refuse("pamd: malformed stream header: %v", err).WriteTo(st)
		return 0, nil, nil, false
	}
	st.SetReadDeadline(time.Time{})
	if hdr.Kind != tunnel.KindAccess && hdr.Kind != tunnel.KindControl {
		tunnel.Refuse("pamd: a client cannot open a %s stream", hdr.Kind).WriteTo(st)
		return 0, nil, nil, false
	}
	var a tunnel.Access
	if err := hdr.Decode(&a); err != nil {
		tunnel.Refuse("pamd: malformed access header").WriteTo(st)
		return 0, nil, nil, false
	}
	sess, ls, refusal := s.authSession(&a)
	if refusal != "" {
		tunnel.Refuse("%s", refusal).WriteTo(st)
		return 0, nil, nil, false
	}
	return hdr.Kind, sess, ls, true
}

// serveStream serves an authenticated control or access stream.
func (s *Relay) serveStream(ctx context.Context, st *yamux.Stream, kind tunnel.Kind, sess *store.Session, ls *sessions.Active, remote string) {
	defer st.Close()
	if kind == tunnel.KindControl {
		s.control(ctx, st, sess, ls)
		return
	}
	s.access(st, sess, ls, remote)
}

// authSession checks the stream's credential and that the session is live.
// A refusal is a message for the user. A session live on this server is
// answered from memory (a new connection reads nothing from the store for
// it); any other is looked up, for the reason it carries no traffic.
func (s *Relay) authSession(a *tunnel.Access) (*store.Session, *sessions.Active, string) {
	var sess *store.Session
	if ls := s.live.Get(a.SessionID); ls != nil {
		sess = ls.Session()
	} else if err := s.st.View(func(tx *store.Tx) (err error) { sess, err = tx.Session(a.SessionID); return }); err != nil {
		sess = nil
	}
	if sess == nil || subtle.ConstantTimeCompare([]byte(sess.CredentialHash), []byte(auth.HashToken(a.Credential))) != 1 {
		return nil, nil, "pamd: unknown session or wrong session credential"
	}
	ls, refusal := s.Live(sess)
	if refusal != "" {
		return nil, nil, refusal
	}
	return sess, ls, ""
}

// control keeps a session's control stream: it tells pamd connect when the
// session ends and ends the session when pamd connect says so.
func (s *Relay) control(ctx context.Context, st *yamux.Stream, sess *store.Session, ls *sessions.Active) {
	tunnel.OK().WriteTo(st)
	msgs := make(chan *tunnel.Message, 1)
	done := make(chan struct{})
	read := make(chan struct{})
	defer func() { <-read }() // serveStream closes st after, so wake the reader now
	defer st.SetReadDeadline(time.Unix(1, 0))
	defer close(done)
	go func() {
		defer close(read)
		defer close(msgs)
		for {
			m, err := tunnel.ReadMessage(st)
			if err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return // connect went away; the session lives until it expires or is ended
			}
			if m.Type == tunnel.MsgEnd {
				s.live.End(ctx, sess.ID, "ended by "+sess.UserName, sess.UserName)
			}
		case <-ls.Context().Done():
			(&tunnel.Message{Type: tunnel.MsgEnded, Reason: sessions.ReasonOf(ls.Context())}).WriteTo(st)
			return
		case <-ctx.Done():
			return
		}
	}
}

// access relays one connection of a session to its resource's gateway.
//
// The client's bytes go on to the gateway as soon as the descriptor is
// written, not after the gateway answered: a new connection whose client
// speaks first costs one round trip through the chain instead of two. The
// gateway's handler reads them only once it has answered. What goes back
// to pamd connect starts with this server's reply, made from the
// gateway's.
func (s *Relay) access(st *yamux.Stream, sess *store.Session, ls *sessions.Active, remote string) {
	gw, err := s.open(sess, remote)
	if err != nil {
		tunnel.Refuse("%s", err.Error()).WriteTo(st)
		return
	}
	served := false
	answer := func() error {
		if err := gw.answer(); err != nil {
			tunnel.Refuse("%s", err.Error()).WriteTo(st)
			return err
		}
		served = true
		_, err := tunnel.OK().WriteTo(st)
		return err
	}
	var up, down proxy.Counter
	err = proxy.JoinAnswered(ls.Context(), st, gw.Stream, &up, &down, answer)
	if !served {
		return // answer recorded why
	}
	if ls.Context().Err() != nil {
		err = errors.New(sessions.ReasonOf(ls.Context()))
	}
	gw.End(up.Load(), down.Load(), err)
}

// recordConnection queues c's record with its byte counts and error (the
// end time set if err ends it); c stays the caller's.
func (s *Relay) recordConnection(c *store.Connection, up, down int64, err error) {
	c.BytesUp, c.BytesDown = up, down
	if err != nil {
		c.Error = err.Error()
		if c.EndedAt.IsZero() {
			c.EndedAt = time.Now().UTC()
		}
	}
	s.conns.put(*c)
}
