package postgresproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/pgwire"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

const (
	// wholeMax bounds a Query, Parse or Bind read whole for its log entry;
	// a longer one streams by and is logged by its length and hash.
	wholeMax = 32 << 20
	// namesMax bounds the prepared statements and portals remembered per
	// connection for the log.
	namesMax = 4096
	// endGrace bounds telling the client why its session ended.
	endGrace = 300 * time.Millisecond
)

// relay carries messages both ways until either side ends or ctx is done,
// logging each request with its outcome. At ctx's end the client gets a
// FATAL ErrorResponse saying why, between two messages of the server's.
func relay(ctx context.Context, client net.Conn, s *serverConn, l *logger) error {
	cw := &lockedWriter{w: client}
	stop := context.AfterFunc(ctx, func() {
		client.SetWriteDeadline(time.Now().Add(endGrace))
		cw.mu.Lock()
		client.SetWriteDeadline(time.Now().Add(endGrace))
		if out, err := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeAdminShutdown, Message: "pamd: " + endMessage(ctx)}).Encode(nil); err == nil {
			client.Write(out)
		}
		cw.mu.Unlock()
		client.Close()
		s.conn.Close()
	})
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- pump(bufio.NewReaderSize(client, 64<<10), s.conn, l.upstreamSeer()) }()
	go func() { errc <- pump(s.br, cw, l.downstreamSeer()) }()
	err := <-errc
	client.Close()
	s.conn.Close()
	<-errc
	l.flush()
	if err == io.EOF || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func endMessage(ctx context.Context) string {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return "the session expired"
	case cause != nil && !errors.Is(cause, context.Canceled):
		return "the session ended: " + cause.Error()
	}
	return "the session ended"
}

// lockedWriter keeps the relay's writes and the session end's message
// whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// seer is shown each message that passes, in order: its type, its body
// when it wants it whole (else nil, and the message may be shown before
// all of it arrived), and its length on the wire.
type seer interface {
	wantWhole(typ byte) bool
	see(typ byte, body []byte, size int)
	// streamed is shown the SHA-256 of a long message it wanted whole
	// but that streamed by, after see (with a nil body).
	streamed(typ byte, size int, sum []byte)
}

// pump copies messages from br to dst, showing each to s. Each write
// carries every byte at hand that may pass: whole messages whose body s
// wants, and of the others (rows, COPY data) as much as has arrived, so
// that bulk data streams with one write per read. A message s wants whole
// and longer than the buffer is read apart (long).
func pump(br *bufio.Reader, dst io.Writer, s seer) error {
	remaining := 0 // bytes of a message already shown, still to pass
	for {
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF && remaining > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		buffered, _ := br.Peek(br.Buffered())
		span := min(remaining, len(buffered))
		remaining -= span
		for remaining == 0 {
			rest := buffered[span:]
			if len(rest) < pgwire.HeaderLen {
				if span > 0 || len(rest) == 0 {
					break
				}
				if _, err := br.Peek(pgwire.HeaderLen); err != nil {
					return unexpected(err)
				}
				buffered, _ = br.Peek(br.Buffered())
				continue
			}
			typ, total, err := pgwire.Header(rest)
			if err != nil {
				return err
			}
			if !s.wantWhole(typ) {
				s.see(typ, nil, total)
				n := min(total, len(rest))
				span, remaining = span+n, total-n
				continue
			}
			if len(rest) < total {
				if span > 0 {
					break
				}
				if total <= br.Size() {
					if _, err := br.Peek(total); err != nil {
						return unexpected(err)
					}
					buffered, _ = br.Peek(br.Buffered())
					continue
				}
				if err := long(br, dst, s, typ, total); err != nil {
					return err
				}
				break
			}
			s.see(typ, rest[pgwire.HeaderLen:total], total)
			span += total
		}
		if span == 0 {
			continue
		}
		if _, err := dst.Write(buffered[:span]); err != nil {
			return err
		}
		br.Discard(span)
	}
}

// long passes on a message longer than the read buffer: whole when s wants
// its body (up to wholeMax), else streamed with its hash.
func long(br *bufio.Reader, dst io.Writer, s seer, typ byte, total int) error {
	if s.wantWhole(typ) && total <= wholeMax {
		msg := make([]byte, total)
		if _, err := io.ReadFull(br, msg); err != nil {
			return unexpected(err)
		}
		s.see(typ, msg[pgwire.HeaderLen:], total)
		_, err := dst.Write(msg)
		return err
	}
	s.see(typ, nil, total)
	hdr, _ := br.Peek(pgwire.HeaderLen)
	if _, err := dst.Write(hdr); err != nil {
		return err
	}
	br.Discard(pgwire.HeaderLen)
	var sum hash.Hash
	w := dst
	if s.wantWhole(typ) {
		sum = sha256.New()
		w = io.MultiWriter(dst, sum)
	}
	if _, err := io.CopyN(w, br, int64(total-pgwire.HeaderLen)); err != nil {
		return unexpected(err)
	}
	if sum != nil {
		s.streamed(typ, total, sum.Sum(nil))
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// logger turns requests and their outcomes into records.
type logger struct {
	d        *tunnel.Descriptor
	rec      func(tunnel.Record)
	database string

	mu    sync.Mutex
	queue []*pending // requests in order, awaiting their replies
	// copyIn and copyOut count the CopyData bytes of the COPY in
	// progress, the client's and the server's.
	copyIn, copyOut atomic.Int64
	// Prepared statements and portals by name, for the log.
	statements map[string]*statement
	portals    map[string]portal
	// lastLong is a long Query, Parse or Bind streaming by, whose hash
	// is still to come.
	lastLong *pending
	longBind *portal
	// batch holds finished statements not yet recorded (batch.go).
	batch batch
}

// statement is a prepared statement's text and its parameters' types:
// those Parse named, else those the server described.
type statement struct {
	text string
	oids []uint32
}

type portal struct {
	text, params string
	cut          *tunnel.Cut
}

// pending is a request awaiting its reply: a simple query ('Q', which
// ends at ReadyForQuery), an Execute ('E'), a Parse ('P', logged only if
// it fails) or a Sync or function call ('S', which ends at ReadyForQuery
// and is not logged).
type pending struct {
	kind  byte
	rec   tunnel.Record
	start time.Time
	tags  []string
	err   string
	done  bool
}

func (l *logger) error(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emit(tunnel.Record{SessionID: l.d.SessionID, ConnectionID: l.d.ConnectionID, Time: time.Now().UTC(), Type: "error", Data: msg})
}

// upstreamSeer follows the client's messages, downstreamSeer the
// server's.
type upstreamSeer struct{ l *logger }
type downstreamSeer struct{ l *logger }

func (l *logger) upstreamSeer() seer   { return upstreamSeer{l} }
func (l *logger) downstreamSeer() seer { return downstreamSeer{l} }

func (upstreamSeer) wantWhole(typ byte) bool {
	return typ == 'Q' || typ == 'P' || typ == 'B' || typ == 'E' || typ == 'C' || typ == 'D'
}

func (u upstreamSeer) see(typ byte, body []byte, size int) {
	l := u.l
	switch typ {
	case 'd':
		l.copyIn.Add(int64(size - pgwire.HeaderLen))
		return
	case 'Q', 'P', 'B', 'E', 'S', 'C', 'F', 'D':
	default:
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statements == nil {
		l.statements, l.portals = map[string]*statement{}, map[string]portal{}
	}
	if body == nil && (typ == 'Q' || typ == 'P' || typ == 'B') { // a long one: its hash comes after
		n := size - pgwire.HeaderLen
		cut := &tunnel.Cut{Field: "command", Length: int64(n), Unread: true}
		switch typ {
		case 'Q':
			p := &pending{kind: 'Q', start: now, rec: tunnel.Record{Type: "query", Command: fmt.Sprintf("(a query of %d bytes, not read for the log)", n), Truncated: cut}}
			l.queue = append(l.queue, p)
			l.lastLong = p
		case 'P':
			p := &pending{kind: 'P', start: now, rec: tunnel.Record{Type: "execute", Command: fmt.Sprintf("(a statement of %d bytes, not read for the log)", n), Truncated: cut}}
			l.queue = append(l.queue, p)
			l.lastLong = p
		case 'B':
			cut.Field = "data"
			l.longBind = &portal{params: fmt.Sprintf("(parameters of %d bytes, not read for the log)", n), cut: cut}
		}
		return
	}
	switch typ {
	case 'Q':
		var q pgproto3.Query
		if q.Decode(body) != nil {
			return
		}
		text, cut := clipCommand(q.String)
		l.queue = append(l.queue, &pending{kind: 'Q', start: now, rec: tunnel.Record{Type: "query", Command: text, Truncated: cut}})
	case 'P':
		var p pgproto3.Parse
		if p.Decode(body) != nil {
			return
		}
		if _, known := l.statements[p.Name]; known || len(l.statements) < namesMax {
			l.statements[p.Name] = &statement{text: p.Query, oids: p.ParameterOIDs}
		}
		text, cut := clipCommand(p.Query)
		l.queue = append(l.queue, &pending{kind: 'P', start: now, rec: tunnel.Record{Type: "execute", Command: text, Truncated: cut}})
	case 'B':
		var b pgproto3.Bind
		if b.Decode(body) != nil {
			return
		}
		st := l.statements[b.PreparedStatement]
		if st == nil {
			st = &statement{}
		}
		params, cut := describeParams(&b, st.oids)
		if _, known := l.portals[b.DestinationPortal]; known || len(l.portals) < namesMax {
			l.portals[b.DestinationPortal] = portal{text: st.text, params: params, cut: cut}
		}
	case 'D':
		// A statement's description tells its parameters' types.
		var d pgproto3.Describe
		if d.Decode(body) == nil && d.ObjectType == 'S' {
			l.queue = append(l.queue, &pending{kind: 'D', rec: tunnel.Record{Command: d.Name}})
		}
	case 'E':
		var e pgproto3.Execute
		if e.Decode(body) != nil {
			return
		}
		p := l.portals[e.Portal]
		text, cut := clipCommand(p.text)
		if l.longBind != nil && e.Portal == "" { // its statement's name was not read either
			p, l.longBind = *l.longBind, nil
			text, cut = "(the statement of a Bind too long to read)", nil
		}
		switch {
		case cut == nil:
			cut = p.cut
		case p.cut != nil:
			cut.Values = p.cut.Values
		}
		l.queue = append(l.queue, &pending{kind: 'E', start: now, rec: tunnel.Record{Type: "execute", Command: text, Data: p.params, Truncated: cut}})
	case 'S', 'F': // a Sync, or a function call (not logged), ends at ReadyForQuery
		l.queue = append(l.queue, &pending{kind: 'S'})
	case 'C':
		var c pgproto3.Close
		if c.Decode(body) == nil {
			if c.ObjectType == 'S' {
				delete(l.statements, c.Name)
			} else {
				delete(l.portals, c.Name)
			}
		}
	}
}

func (u upstreamSeer) streamed(typ byte, size int, sum []byte) {
	u.l.mu.Lock()
	defer u.l.mu.Unlock()
	switch {
	case typ == 'B' && u.l.longBind != nil:
		u.l.longBind.cut.SHA256 = hex.EncodeToString(sum)
	case u.l.lastLong != nil:
		u.l.lastLong.rec.Truncated.SHA256 = hex.EncodeToString(sum)
		u.l.lastLong = nil
	}
}

func (downstreamSeer) wantWhole(typ byte) bool                 { return typ == 'E' || typ == 'C' || typ == 't' }
func (downstreamSeer) streamed(typ byte, size int, sum []byte) {}

// see follows the server's replies: each request's outcome comes in
// order, and an error in the extended protocol skips the rest up to Sync.
func (dn downstreamSeer) see(typ byte, body []byte, size int) {
	l := dn.l
	switch typ {
	case 'd':
		l.copyOut.Add(int64(size - pgwire.HeaderLen))
		return
	case 'C', 'E', 'Z', 'I', 's', '1', 'G', 'H', 'W', 't':
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.head()
	switch typ {
	case 'G', 'H', 'W':
		if h != nil {
			h.rec.Type, h.rec.Path = "copy", map[byte]string{'G': "in", 'H': "out", 'W': "both"}[typ]
		}
	case 'C':
		var c pgproto3.CommandComplete
		if h == nil || c.Decode(body) != nil {
			return
		}
		tag := string(c.CommandTag)
		h.tags = append(h.tags, tag)
		h.rec.Rows += tagRows(tag)
		switch h.rec.Path {
		case "in":
			h.rec.Size = l.copyIn.Swap(0)
		case "out":
			h.rec.Size = l.copyOut.Swap(0)
		}
		if h.kind == 'E' {
			l.finish(h)
		}
	case 'I', 's':
		if h != nil && h.kind == 'E' {
			if typ == 's' {
				h.tags = append(h.tags, "(suspended)")
			}
			l.finish(h)
		}
	case '1':
		if h != nil && h.kind == 'P' {
			h.done = true
			l.pop()
		}
	case 't':
		var pd pgproto3.ParameterDescription
		if h != nil && h.kind == 'D' && pd.Decode(body) == nil {
			if st := l.statements[h.rec.Command]; st != nil && len(st.oids) < len(pd.ParameterOIDs) {
				st.oids = pd.ParameterOIDs
			}
			h.done = true
			l.pop()
		}
	case 'E':
		var e pgproto3.ErrorResponse
		if e.Decode(body) != nil {
			return
		}
		msg, _ := proxy.Clip(e.Message, proxy.LogNoteMax)
		text := "SQLSTATE " + e.Code + ": " + msg
		switch {
		case h == nil, h.kind == 'S':
			l.emit(l.record(&pending{start: time.Now(), err: text, rec: tunnel.Record{Type: "execute"}}))
		case h.kind == 'Q':
			if h.err == "" {
				h.err = text
			}
		case h.kind == 'D': // the statement to describe is not there
			h.done = true
			fallthrough
		default: // an Execute or a Parse: it failed, and what follows up to Sync is skipped
			h.err = text
			l.finish(h)
			for _, p := range l.queue {
				if p.kind == 'S' {
					break
				}
				p.err = "not run: an earlier message before Sync failed"
			}
		}
	case 'Z':
		for len(l.queue) > 0 {
			p := l.queue[0]
			if p.kind == 'E' || p.kind == 'Q' {
				l.finish(p)
			} else {
				l.pop()
			}
			if p.kind == 'S' || p.kind == 'Q' {
				break
			}
		}
	}
}

// head is the oldest request without its outcome yet.
func (l *logger) head() *pending {
	if len(l.queue) == 0 {
		return nil
	}
	return l.queue[0]
}

func (l *logger) pop() {
	l.queue[0] = nil
	l.queue = l.queue[1:]
}

// finish logs the head request and drops it.
func (l *logger) finish(p *pending) {
	if !p.done {
		l.emit(l.record(p))
	}
	p.done = true
	l.pop()
}

func (l *logger) record(p *pending) tunnel.Record {
	r := p.rec
	r.SessionID, r.ConnectionID, r.Database = l.d.SessionID, l.d.ConnectionID, l.database
	r.Time = p.start.UTC()
	r.DurationMS = float64(time.Since(p.start).Microseconds()) / 1000
	r.Op = strings.Join(p.tags, "; ")
	ok := 1
	if p.err != "" {
		ok, r.Error = 0, p.err
	}
	r.Status = &ok
	return r
}

// flush logs what was still waiting when the connection ended, and the
// batch.
func (l *logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queue) > 0 {
		p := l.queue[0]
		if p.kind == 'E' || p.kind == 'Q' {
			if p.err == "" {
				p.err = "no reply: the connection ended"
			}
			l.finish(p)
		} else {
			l.pop()
		}
	}
	l.flushBatch()
	l.batch.ended = true
}

// tagRows is the row count a CommandComplete tag ends with ("SELECT 3",
// "INSERT 0 2", "COPY 100000"), 0 for others.
func tagRows(tag string) int64 {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(tag[i+1:], 10, 64)
	return n
}

// clipCommand is a statement's text for the log, cut to its bounds.
func clipCommand(s string) (string, *tunnel.Cut) {
	text, cut := proxy.Clip(s, proxy.LogTextMax)
	if cut != nil {
		cut.Field = "command"
	}
	return text, cut
}

// describeParams renders a Bind's parameters ($1 = 'text', $2 = NULL,
// $3 = 42 for a binary int4, $4 = '\x0102' for other binary values), each
// value and the whole cut to the log's bounds. oids are the parameters'
// types where known.
func describeParams(b *pgproto3.Bind, oids []uint32) (string, *tunnel.Cut) {
	if len(b.Parameters) == 0 {
		return "", nil
	}
	parts := make([]string, 0, len(b.Parameters))
	values := 0
	for i, v := range b.Parameters {
		format := int16(0)
		switch {
		case len(b.ParameterFormatCodes) == 1:
			format = b.ParameterFormatCodes[0]
		case i < len(b.ParameterFormatCodes):
			format = b.ParameterFormatCodes[i]
		}
		var oid uint32
		if i < len(oids) {
			oid = oids[i]
		}
		if v == nil {
			parts = append(parts, fmt.Sprintf("$%d = NULL", i+1))
			continue
		}
		s, quoted := paramText(v, format, oid)
		s, cut := proxy.Clip(s, proxy.LogValueMax)
		if cut != nil {
			values++
		}
		if quoted {
			s = "'" + s + "'"
		}
		parts = append(parts, fmt.Sprintf("$%d = %s", i+1, s))
	}
	data, cut := proxy.Clip(strings.Join(parts, ", "), proxy.LogTextMax)
	switch {
	case cut != nil:
		cut.Field, cut.Values = "data", values
	case values > 0:
		cut = &tunnel.Cut{Values: values}
	}
	return data, cut
}

// Type OIDs whose binary form the log shows as text.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidFloat4  = 700
	oidFloat8  = 701
	oidVarchar = 1043
	oidUUID    = 2950
)

// paramText is a parameter's value as the log shows it, and whether to
// quote it: text as it is; binary numbers, booleans and UUIDs decoded;
// other binary values in hex.
func paramText(v []byte, format int16, oid uint32) (string, bool) {
	if format == 0 && utf8.Valid(v) {
		return string(v), true
	}
	if format == 1 {
		switch {
		case oid == oidInt2 && len(v) == 2:
			return strconv.Itoa(int(int16(binary.BigEndian.Uint16(v)))), false
		case oid == oidInt4 && len(v) == 4:
			return strconv.Itoa(int(int32(binary.BigEndian.Uint32(v)))), false
		case oid == oidInt8 && len(v) == 8:
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10), false
		case oid == oidFloat4 && len(v) == 4:
			return strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 'g', -1, 32), false
		case oid == oidFloat8 && len(v) == 8:
			return strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(v)), 'g', -1, 64), false
		case oid == oidBool && len(v) == 1:
			return strconv.FormatBool(v[0] != 0), false
		case oid == oidUUID && len(v) == 16:
			h := hex.EncodeToString(v)
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
		case (oid == oidText || oid == oidVarchar) && utf8.Valid(v):
			return string(v), true
		}
	}
	return `\x` + hex.EncodeToString(v), true
}
