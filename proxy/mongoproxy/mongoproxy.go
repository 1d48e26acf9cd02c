package mongoproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/mnet"

	"github.com/pamd/pamd/protocol/mongowire"
	"github.com/pamd/pamd/protocol/tunnel"
	pamdproxy "github.com/pamd/pamd/proxy"
)

// MongoDB error codes pamd answers with.
const (
	codeAuthenticationFailed = 18
	codeBadValue             = 2
	codeHostUnreachable      = 6
)

// Handler is the gateway's mongodb handler. It keeps a driver topology per
// access session (see Pool).
type Handler struct {
	pool *Pool
}

// New returns a handler with an empty pool.
func New() *Handler { return &Handler{pool: NewPool()} }

// EndSession closes the session's topologies.
func (h *Handler) EndSession(sessionID string) { h.pool.Release(sessionID) }

// Sweep closes the topologies of sessions expired by now, whether or not a
// notice came.
func (h *Handler) Sweep(now time.Time) { h.pool.Sweep(now) }

// Close closes every topology and waits until they are closed.
func (h *Handler) Close() { h.pool.Close() }

// Probe checks that the server is reachable (and, with credentials in d,
// that they work) and says its version.
func (h *Handler) Probe(ctx context.Context, d *tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	if d.Mongo == nil {
		return &tunnel.ProbeResult{}, errNoPart
	}
	v, err := Probe(ctx, d)
	return &tunnel.ProbeResult{Version: v}, err
}

// Rotation changes the password with updateUser (ChangePassword).
func (h *Handler) Rotation(r *tunnel.Rotation) (*pamdproxy.TargetOps, error) {
	if r.Account.Mongo == nil || (r.With != nil && r.With.Mongo == nil) {
		return nil, errNoPart
	}
	next := r.Account
	part := *next.Mongo
	part.Password = r.NewPassword
	next.Mongo = &part
	return &pamdproxy.TargetOps{Login: Login, Change: ChangePassword, Next: &next}, nil
}

var errNoPart = errors.New("the descriptor has no mongodb part (server and gateway versions differ?)")

// Handle serves one client connection of a mongodb resource until the
// client leaves or ctx ends.
func (h *Handler) Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, rec pamdproxy.Recorder) error {
	if d.Mongo == nil {
		pamdproxy.Answer(stream, pamdproxy.Refuse("pamd gateway: %v", errNoPart))
		return errNoPart
	}
	pool := h.pool
	var conn *mnet.Connection
	top, err := pool.topology(ctx, d)
	if err == nil {
		if conn, err = serverConn(ctx, top); err != nil {
			err = explain(d, err)
		}
	}
	if err != nil {
		var te *pamdproxy.TargetError
		if !errors.As(err, &te) {
			err = pamdproxy.TargetFailed(tunnel.ReasonOther, err)
		}
		pamdproxy.Answer(stream, err)
		rec.Record(tunnel.Record{SessionID: d.SessionID, ConnectionID: d.ConnectionID, Time: time.Now().UTC(), Type: "error", Data: err.Error()})
		answerWithError(ctx, stream, "pamd: "+err.Error())
		return err
	}
	defer conn.Close()
	if err := pamdproxy.Answer(stream, nil); err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done(): // the session ended or expired: none of its connections may go on
			stream.Close()
			pool.Release(d.SessionID)
		case <-done:
		}
	}()
	p := &proxy{d: d, client: stream, server: conn, rec: rec.Record}
	for {
		raw, m, err := readMessage(stream)
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := p.relay(ctx, raw, m); err != nil {
			return err
		}
	}
}

// readMessage reads one message whole into one buffer and parses it over
// that buffer: a message relayed unchanged goes on as it was read, with no
// copy made to encode it again.
func readMessage(r io.Reader) ([]byte, *mongowire.Message, error) {
	var h [mongowire.HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, nil, fmt.Errorf("mongowire: read header: %w", err)
	}
	n := int32(binary.LittleEndian.Uint32(h[:]))
	if n < mongowire.HeaderLen || n > mongowire.MaxMessage {
		return nil, nil, fmt.Errorf("%w: %d", mongowire.ErrLength, n)
	}
	raw := make([]byte, n)
	copy(raw, h[:])
	if _, err := io.ReadFull(r, raw[mongowire.HeaderLen:]); err != nil {
		return nil, nil, fmt.Errorf("mongowire: read body: %w", err)
	}
	m, err := mongowire.Parse(raw)
	return raw, m, err
}

type proxy struct {
	d      *tunnel.Descriptor
	client net.Conn
	server *mnet.Connection
	rec    func(tunnel.Record)
}

func (p *proxy) record(r tunnel.Record) {
	r.SessionID, r.ConnectionID, r.Type = p.d.SessionID, p.d.ConnectionID, "command"
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	p.rec(r)
}

// relay passes one client message, raw as read and m parsed over it, to
// the server and its replies back.
func (p *proxy) relay(ctx context.Context, raw []byte, m *mongowire.Message) error {
	var (
		name, db, coll string
		hello          bool
		summary        string
		summaryCut     *tunnel.Cut
		moreToCome     bool
	)
	switch m.Header.OpCode {
	case mongowire.OpMsg:
		msg, err := mongowire.ParseMsg(m.Body)
		if err != nil {
			return p.reply(m, errorDoc(codeBadValue, "BadValue", "pamd: malformed OP_MSG: "+err.Error()))
		}
		body := bsoncore.Document(msg.Body)
		name, coll = commandName(body)
		db, _ = body.Lookup("$db").StringValueOK()
		moreToCome = msg.Flags&mongowire.FlagMoreToCome != 0
		summary, summaryCut = summarize(body, msg.Sequences)
		if isHello(name) {
			msg.Body = without(body, helloRequestDropped)
		}
		if isHello(name) || moreToCome {
			// A fire-and-forget request is sent asking for a reply, which
			// pamd reads and drops: some servers reply anyway, and a reply
			// left unread would reach the next client of the connection.
			msg.Flags &^= mongowire.FlagMoreToCome
			m = &mongowire.Message{Header: m.Header, Body: msg.AppendBody(nil)}
			raw = m.Append(nil)
		}
	case mongowire.OpQuery:
		q, err := mongowire.ParseQuery(m.Body)
		if err != nil {
			return p.reply(m, errorDoc(codeBadValue, "BadValue", "pamd: malformed OP_QUERY: "+err.Error()))
		}
		name, coll = commandName(q.Query)
		db, _, _ = strings.Cut(q.Collection, ".")
		summary, summaryCut = summarize(q.Query, nil)
		if isHello(name) {
			q.Query = without(q.Query, helloRequestDropped)
			m = &mongowire.Message{Header: m.Header, Body: q.AppendBody(nil)}
			raw = m.Append(nil)
		}
	case mongowire.OpCompressed:
		return p.reply(m, errorDoc(codeBadValue, "BadValue", "pamd: compression was not negotiated; connect without compressors"))
	default:
		return fmt.Errorf("client sent op code %d", m.Header.OpCode)
	}
	hello = isHello(name)
	if authCommands[strings.ToLower(name)] {
		msg := "pamd: no credentials needed: pamd logs in to the server for you. Remove the user name and password from the connection string (" + name + " refused)"
		p.record(tunnel.Record{Database: db, Command: name, Data: "(authentication command answered by pamd)", Status: ptr(0), Error: msg, Code: codeAuthenticationFailed})
		return p.reply(m, errorDoc(codeAuthenticationFailed, "AuthenticationFailed", msg))
	}

	start := time.Now()
	if err := p.server.Write(ctx, raw); err != nil {
		return p.lost(m, err)
	}
	var last bsoncore.Document
	for stray := 0; ; {
		raw, err := p.server.Read(ctx)
		if err != nil {
			return p.lost(m, err)
		}
		out := raw
		r, err := mongowire.Parse(raw)
		if err != nil {
			return p.lost(m, err)
		}
		if r.Header.ResponseTo != m.Header.RequestID {
			if stray++; stray > 8 {
				return p.lost(m, fmt.Errorf("the server's replies answer other requests"))
			}
			continue // a reply to an earlier request on this connection
		}
		more := false
		switch r.Header.OpCode {
		case mongowire.OpMsg:
			rm, err := mongowire.ParseMsg(r.Body)
			if err != nil {
				return p.lost(m, err)
			}
			more = rm.Flags&mongowire.FlagMoreToCome != 0
			if hello {
				rm.Body = sanitizeHello(rm.Body)
				r.Body = rm.AppendBody(nil)
				out = r.Append(nil)
			}
			last = rm.Body
		case mongowire.OpReply:
			rr, err := mongowire.ParseReply(r.Body)
			if err != nil || len(rr.Documents) == 0 {
				return p.lost(m, fmt.Errorf("malformed OP_REPLY"))
			}
			if hello {
				rr.Documents[0] = sanitizeHello(rr.Documents[0])
				r.Body = rr.AppendBody(nil)
				out = r.Append(nil)
			}
			last = rr.Documents[0]
		}
		if !moreToCome { // the client asked for no reply
			if _, err := p.client.Write(out); err != nil {
				return err
			}
		}
		if !more {
			break
		}
	}
	if hello {
		return nil // handshakes and monitoring: not worth a log line each
	}
	r := tunnel.Record{Time: start.UTC(), Database: db, Collection: coll, Command: name, Data: summary, Truncated: summaryCut,
		DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	if last != nil {
		ok, errmsg, code, docs := outcome(last)
		r.Status, r.Code, r.Docs = ptr(boolInt(ok && errmsg == "")), code, docs
		r.Error, _ = pamdproxy.Clip(errmsg, pamdproxy.LogNoteMax)
	}
	p.record(r)
	return nil
}

// lost tells the client the server connection failed, then gives up.
func (p *proxy) lost(m *mongowire.Message, err error) error {
	p.reply(m, errorDoc(codeHostUnreachable, "HostUnreachable", "pamd: the connection to the MongoDB server failed: "+err.Error()))
	return err
}

func (p *proxy) reply(m *mongowire.Message, doc bsoncore.Document) error {
	_, err := p.client.Write(replyTo(m, doc))
	return err
}

// commandName returns the command (the first key) and, when its value
// names one, the collection.
func commandName(doc bsoncore.Document) (name, coll string) {
	elems, err := doc.Elements()
	if err != nil || len(elems) == 0 {
		return "", ""
	}
	name = elems[0].Key()
	if s, ok := elems[0].Value().StringValueOK(); ok {
		coll = s
	}
	if name == "getMore" {
		coll, _ = doc.Lookup("collection").StringValueOK()
	}
	return name, coll
}

// answerWithError replies to every request with msg until the client gives
// up: the client learns why in its own protocol instead of seeing a drop.
func answerWithError(ctx context.Context, stream net.Conn, msg string) {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stream.SetDeadline(deadline)
	for {
		m, err := mongowire.ReadMessage(stream)
		if err != nil {
			return
		}
		if m.Header.OpCode != mongowire.OpMsg && m.Header.OpCode != mongowire.OpQuery {
			return
		}
		if _, err := stream.Write(replyTo(m, errorDoc(codeHostUnreachable, "HostUnreachable", msg))); err != nil {
			return
		}
	}
}

func ptr(i int) *int { return &i }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
