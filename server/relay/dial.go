package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

// Live is the live session of sess, or why it may carry no traffic (a
// message for the user): ended, expired, or not active on this server.
func (s *Relay) Live(sess *store.Session) (*sessions.Active, string) {
	if !sess.EndedAt.IsZero() {
		return nil, "pamd: session " + sess.ID + " has ended: " + sess.EndReason
	}
	if !time.Now().Before(sess.ExpiresAt) {
		return nil, "pamd: session " + sess.ID + " expired at " + sess.ExpiresAt.Format(time.RFC3339)
	}
	ls := s.live.Get(sess.ID)
	if ls == nil {
		return nil, "pamd: session " + sess.ID + " is not active"
	}
	return ls, ""
}

// Conn is one connection of a session to its resource's gateway, dialled
// and answered: an access stream relays its bytes, the web terminal speaks
// SSH over it. Its start is recorded when Dial returns it; End records
// its end.
type Conn struct {
	// Stream is the dial stream; the gateway's handler for the resource's
	// protocol is at its far end.
	Stream   *yamux.Stream
	Resource *store.Resource
	Account  *store.Account

	relay  *Relay
	sess   *store.Session
	remote string
	start  time.Time
	kind   kind.Kind
	rec    store.Connection
	done   func(up, down int64)
}

// Dial opens a connection of sess to its resource's gateway, as pamd
// connect's access streams are: the descriptor the resource's kind builds
// on a dial stream, and the gateway's answer. remote is the client's
// address, for the connection's record. An error's text is for the user
// (the gateway's refusal, or why the gateway cannot be reached).
func (s *Relay) Dial(sess *store.Session, remote string) (*Conn, error) {
	c, err := s.open(sess, remote)
	if err != nil {
		return nil, err
	}
	if err := c.answer(); err != nil {
		return nil, err
	}
	return c, nil
}

// open is Dial's first half: the dial stream with the descriptor written.
// Bytes written to c.Stream from here on wait at the gateway until its
// handler has answered (answer reads that), so an access stream can pass
// the client's first bytes on without waiting a round trip.
func (s *Relay) open(sess *store.Session, remote string) (*Conn, error) {
	c := &Conn{relay: s, sess: sess, remote: remote, start: time.Now()}
	var err error
	c.Resource, c.Account, err = s.catalog.get(sess)
	if err != nil {
		return nil, errors.New("pamd: the resource or account of this session was removed")
	}
	res, acct := c.Resource, c.Account
	c.rec = store.Connection{ID: store.NewID(), SessionID: sess.ID, ClientAddr: remote, Gateway: res.Gateway, StartedAt: time.Now().UTC()}
	gw, served, err := s.cfg.Gateways.OpenFor(res, c.rec.ID)
	if served != "" {
		c.rec.Gateway = served // of the group, the one chosen
	}
	if err != nil {
		s.recordConnection(&c.rec, 0, 0, err)
		s.cfg.Metrics.ConnectionRefused(res.Type, "failed")
		return nil, fmt.Errorf("pamd: %v; the resource %s cannot be reached until it reconnects", err, res.Name)
	}
	desc := tunnel.Descriptor{
		SessionID: sess.ID, ConnectionID: c.rec.ID, User: sess.UserName, ExpiresAt: sess.ExpiresAt,
		ClientAddr: sess.ClientAddr,
	}
	c.kind, err = s.cfg.Kinds.Must(res)
	if err == nil {
		desc.Record = c.kind.Records()
		err = s.cfg.Kinds.Descriptor(&desc, res, acct, sess)
	}
	var hdr *tunnel.Header
	if err == nil {
		hdr, err = tunnel.NewHeader(tunnel.KindDial, desc)
	}
	if err != nil {
		gw.Close()
		s.recordConnection(&c.rec, 0, 0, err)
		s.cfg.Metrics.ConnectionRefused(res.Type, "failed")
		s.log.Error("descriptor", "session", sess.ID, "err", err)
		return nil, errors.New("pamd: preparing the connection failed (see the server log)")
	}
	// The connection's record, naming the gateway, is queued before the
	// descriptor (and so any record of the connection) leaves; the hub
	// keeps the connection's records from that gateway only (it also
	// remembered it in OpenFor, until this record is committed). answer
	// records it again with the gateway's answer.
	s.recordConnection(&c.rec, 0, 0, nil)
	if _, err := hdr.WriteTo(gw); err != nil {
		return nil, c.failed(gw, err)
	}
	c.Stream = gw
	return c, nil
}

// answer is Dial's second half: the gateway's answer to the descriptor,
// recorded (a target failure is served: the handler tells the client, the
// server keeps the record and audits it).
func (c *Conn) answer() error {
	s, res, acct := c.relay, c.Resource, c.Account
	c.Stream.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply, err := tunnel.ReadReply(c.Stream)
	c.Stream.SetReadDeadline(time.Time{})
	if err == nil {
		err = reply.Err()
	}
	if err != nil {
		return c.failed(c.Stream, err)
	}
	if reply.Status == tunnel.StatusTargetFailed {
		c.rec.Error = reply.Message
		action := c.kind.FailureAction(reply.Reason)
		if action == "" {
			action = "connection.target_failed"
		}
		s.trail.Event(c.sess.UserName, action, res.Name+"/"+acct.Name, "failure", audit.Host(c.remote), reply.Message)
	}
	s.recordConnection(&c.rec, 0, 0, nil)
	c.done = s.cfg.Metrics.ConnectionStarted(res.Type, time.Since(c.start))
	return nil
}

// failed closes a dial stream the gateway did not serve, records why, and
// returns the error for the user: the gateway's refusal, or that it did
// not answer.
func (c *Conn) failed(gw *yamux.Stream, err error) error {
	s, res := c.relay, c.Resource
	gw.Close()
	s.recordConnection(&c.rec, 0, 0, err)
	var refusal *tunnel.Refusal
	if errors.As(err, &refusal) {
		s.cfg.Metrics.ConnectionRefused(res.Type, "refused")
		return errors.New(refusal.Message)
	}
	s.cfg.Metrics.ConnectionRefused(res.Type, "failed")
	return fmt.Errorf("pamd: gateway %s did not answer: %v", c.rec.Gateway, err)
}

// End closes the stream and records the connection's end: the bytes
// relayed each way and what ended it (nil: either side closed).
func (c *Conn) End(up, down int64, err error) {
	c.Stream.Close()
	c.rec.EndedAt = time.Now().UTC()
	if err == nil && c.rec.Error != "" {
		err = errors.New(c.rec.Error)
	}
	c.done(up, down)
	c.relay.recordConnection(&c.rec, up, down, err)
}
