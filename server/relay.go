package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/store"
)

// serveClient runs one pamd connect tunnel: a yamux session whose streams
// are either a session's control stream or one proxied connection each.
//
// The first stream authenticates the connection (pamd connect opens its
// control stream and waits for the answer before anything else). It must
// do so within lim.authTimeout of the handshake; until it has, the gate
// lets the client open no other stream, and a connection whose first
// stream is refused is closed. authenticated gives back the connection's
// unauthenticated slot (see dispatch).
func (s *Server) serveClient(ctx context.Context, c net.Conn, authenticated func()) {
	remote := c.RemoteAddr().String()
	deadline := time.Now().Add(s.lim.authTimeout)
	sess, gate, err := proxy.YamuxServerGated(c)
	if err != nil {
		return
	}
	// streams counts the connection's stream goroutines: it is not done
	// (nor the store closed) until they are. Closing the session, first,
	// ends them.
	var streams sync.WaitGroup
	defer streams.Wait()
	defer sess.Close()
	defer context.AfterFunc(ctx, func() { sess.Close() })()
	first, err := acceptWithin(sess, s.lim.authTimeout)
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

	slots := make(chan struct{}, s.lim.clientStreams)
	slots <- struct{}{}
	streams.Add(1)
	go func() {
		defer streams.Done()
		defer func() { <-slots }()
		s.serveStream(ctx, first, kind, ss, ls, remote)
	}()
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
			kind, ss, ls, ok := s.authStream(st, remote)
			if !ok {
				st.Close()
				return
			}
			s.serveStream(ctx, st, kind, ss, ls, remote)
		}()
	}
}

// authStream reads a client stream's header, under the read deadline the
// caller set, and checks its session. When it fails it has refused the
// stream.
func (s *Server) authStream(st *yamux.Stream, remote string) (tunnel.Kind, *store.Session, *liveSession, bool) {
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
func (s *Server) serveStream(ctx context.Context, st *yamux.Stream, kind tunnel.Kind, sess *store.Session, ls *liveSession, remote string) {
	defer st.Close()
	if kind == tunnel.KindControl {
		s.control(ctx, st, sess, ls)
		return
	}
	s.access(st, sess, ls, remote)
}

// authSession checks the stream's credential and that the session is live.
// A refusal is a message for the user.
func (s *Server) authSession(a *tunnel.Access) (*store.Session, *liveSession, string) {
	var sess *store.Session
	err := s.st.View(func(tx *store.Tx) (err error) { sess, err = tx.Session(a.SessionID); return })
	if err != nil || subtle.ConstantTimeCompare([]byte(sess.CredentialHash), []byte(hashToken(a.Credential))) != 1 {
		return nil, nil, "pamd: unknown session or wrong session credential"
	}
	if !sess.EndedAt.IsZero() {
		return nil, nil, "pamd: session " + sess.ID + " has ended: " + sess.EndReason
	}
	if !time.Now().Before(sess.ExpiresAt) {
		return nil, nil, "pamd: session " + sess.ID + " expired at " + sess.ExpiresAt.Format(time.RFC3339)
	}
	ls := s.live.get(sess.ID)
	if ls == nil {
		return nil, nil, "pamd: session " + sess.ID + " is not active"
	}
	return sess, ls, ""
}

// control keeps a session's control stream: it tells pamd connect when the
// session ends and ends the session when pamd connect says so.
func (s *Server) control(ctx context.Context, st *yamux.Stream, sess *store.Session, ls *liveSession) {
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
				s.live.end(ctx, sess.ID, "ended by "+sess.UserName, sess.UserName)
			}
		case <-ls.ctx.Done():
			(&tunnel.Message{Type: tunnel.MsgEnded, Reason: reasonOf(ls.ctx)}).WriteTo(st)
			return
		case <-ctx.Done():
			return
		}
	}
}

// access relays one connection of a session to its resource's gateway.
func (s *Server) access(st *yamux.Stream, sess *store.Session, ls *liveSession, remote string) {
	var (
		res  *store.Resource
		acct *store.Account
	)
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.Resource(sess.ResourceID); err != nil {
			return err
		}
		acct, err = tx.Account(sess.ResourceID, sess.AccountID)
		return err
	})
	if err != nil {
		tunnel.Refuse("pamd: the resource or account of this session was removed").WriteTo(st)
		return
	}
	conn := &store.Connection{ID: store.NewID(), SessionID: sess.ID, ClientAddr: remote, Gateway: res.Gateway, StartedAt: time.Now().UTC()}
	gw, err := s.hub.open(res.Gateway)
	if err != nil {
		s.recordConnection(conn, 0, 0, err)
		tunnel.Refuse("pamd: %v; the resource %s cannot be reached until it reconnects", err, res.Name).WriteTo(st)
		return
	}
	defer gw.Close()
	desc := tunnel.Descriptor{
		SessionID: sess.ID, ConnectionID: conn.ID, User: sess.UserName, ExpiresAt: sess.ExpiresAt,
		ClientAddr: sess.ClientAddr,
	}
	k, err := s.kinds.must(res)
	if err == nil {
		desc.Record = k.Records()
		err = s.accountDescriptor(&desc, res, acct, sess)
	}
	if err != nil {
		s.recordConnection(conn, 0, 0, err)
		tunnel.Refuse("pamd: preparing the connection failed (see the server log)").WriteTo(st)
		s.log.Error("descriptor", "session", sess.ID, "err", err)
		return
	}
	hdr, err := tunnel.NewHeader(tunnel.KindDial, desc)
	if err == nil {
		_, err = hdr.WriteTo(gw)
	}
	var reply *tunnel.Reply
	if err == nil {
		gw.SetReadDeadline(time.Now().Add(20 * time.Second))
		reply, err = tunnel.ReadReply(gw)
		gw.SetReadDeadline(time.Time{})
	}
	if err == nil {
		err = reply.Err()
	}
	if err != nil {
		s.recordConnection(conn, 0, 0, err)
		var refusal *tunnel.Refusal
		if errors.As(err, &refusal) {
			tunnel.Refuse("%s", refusal.Message).WriteTo(st)
		} else {
			tunnel.Refuse("pamd: gateway %s did not answer: %v", res.Gateway, err).WriteTo(st)
		}
		return
	}
	if reply.Status == tunnel.StatusTargetFailed {
		// Served: the handler tells the client; the server keeps the record.
		conn.Error = reply.Message
		action := k.FailureAction(reply.Reason)
		if action == "" {
			action = "connection.target_failed"
		}
		s.auditEvent(sess.UserName, action, res.Name+"/"+acct.Name, "failure", hostOf(remote), reply.Message)
	}
	if _, err := tunnel.OK().WriteTo(st); err != nil {
		return
	}
	s.recordConnection(conn, 0, 0, nil)
	var up, down proxy.Counter
	err = proxy.Join(ls.ctx, st, gw, &up, &down)
	if ls.ctx.Err() != nil {
		err = errors.New(reasonOf(ls.ctx))
	}
	conn.EndedAt = time.Now().UTC()
	if err == nil && conn.Error != "" {
		err = errors.New(conn.Error)
	}
	s.recordConnection(conn, up.Load(), down.Load(), err)
}

// accountDescriptor fills in how the gateway reaches res and logs in as
// acct; sess bounds a certificate made for the connection.
func (s *Server) accountDescriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, sess *store.Session) error {
	k, err := s.kinds.must(res)
	if err != nil {
		return err
	}
	d.Protocol, d.Resource, d.Account = res.Type, res.Name, acct.Name
	d.Target = net.JoinHostPort(res.Host, fmt.Sprint(res.Port))
	return k.Descriptor(d, res, acct, sess)
}

func (s *Server) recordConnection(c *store.Connection, up, down int64, err error) {
	c.BytesUp, c.BytesDown = up, down
	if err != nil {
		c.Error = err.Error()
		if c.EndedAt.IsZero() {
			c.EndedAt = time.Now().UTC()
		}
	}
	rec := *c
	if err := s.st.Batch(func(tx *store.Tx) error { return tx.PutConnection(&rec) }); err != nil {
		s.log.Error("record connection", "session", c.SessionID, "err", err)
	}
}
