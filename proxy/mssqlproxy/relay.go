package mssqlproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// rpcKeepMax bounds the part of an RPC request read for its log entry; a
// longer request is logged from that part, with the whole's length and
// hash. SQL batches stream through a proxy.Clipper whatever their length.
// The text bounds (proxy.LogTextMax, LogValueMax) are in JSON bytes.
const rpcKeepMax = 1 << 20

// logger turns requests and their outcomes into records.
type logger struct {
	d        *tunnel.Descriptor
	rec      func(tunnel.Record)
	database string
	version  tds.Version // the login's, so the replies' token layout
}

func (l *logger) error(msg string) {
	l.rec(tunnel.Record{SessionID: l.d.SessionID, ConnectionID: l.d.ConnectionID, Time: time.Now().UTC(), Type: "error", Data: msg})
}

// request is a client message waiting for its reply.
type request struct {
	rec       tunnel.Record
	start     time.Time
	attention bool
	silent    bool // needs a reply but is not logged (transaction manager)
}

// relay carries packets both ways until either side ends, logging each
// request with the outcome its reply reports.
func relay(ctx context.Context, client, server net.Conn, l *logger) error {
	pending := make(chan request, 256) // requests in order, awaiting replies
	errc := make(chan error, 2)
	go func() { errc <- pump(client, server, l.upstream(pending)) }()
	go func() { errc <- pump(server, client, l.downstream(pending)) }()
	err := <-errc
	client.Close()
	server.Close()
	<-errc
	if err == io.EOF || ctx.Err() != nil {
		return nil
	}
	return err
}

// pump copies whole packets from src to dst, showing each to see. Packets
// are read into one buffer and written from it, each write carrying every
// whole packet at hand: a byte is copied by the read alone.
func pump(src, dst net.Conn, see func(typ, status byte, payload []byte)) error {
	br := bufio.NewReaderSize(src, 64<<10) // holds the largest packet (tds.MaxPacket)
	for {
		if _, err := br.Peek(tds.HeaderLen); err != nil { // wait for the next packet
			return cutShort(br, err)
		}
		n, err := wholePackets(br, see)
		if err != nil {
			return err
		}
		b, _ := br.Peek(n)
		if _, err := dst.Write(b); err != nil {
			return err
		}
		br.Discard(n)
	}
}

// wholePackets shows see the whole packets in br's buffer, at least one
// (it waits for the rest of the first), and returns their length.
func wholePackets(br *bufio.Reader, see func(typ, status byte, payload []byte)) (int, error) {
	span := 0
	for {
		buffered, _ := br.Peek(br.Buffered())
		rest := buffered[span:]
		if len(rest) < tds.HeaderLen {
			return span, nil
		}
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		if n < tds.HeaderLen || n > tds.MaxPacket {
			return 0, fmt.Errorf("%w: packet length %d", tds.ErrLength, n)
		}
		if len(rest) < n {
			if span > 0 {
				return span, nil
			}
			// Only now does the buffer fill, while it holds nothing shown.
			if _, err := br.Peek(n); err != nil {
				return 0, cutShort(br, err)
			}
			continue
		}
		see(rest[0], rest[1], rest[tds.HeaderLen:n])
		span += n
	}
}

// cutShort says a stream that ended inside a packet ended short.
func cutShort(br *bufio.Reader, err error) error {
	if err == io.EOF && br.Buffered() > 0 {
		return io.ErrUnexpectedEOF
	}
	return err
}

// upstream reads the client's messages and queues them for their replies.
func (l *logger) upstream(pending chan<- request) func(typ, status byte, payload []byte) {
	var (
		buf   []byte
		size  int
		start time.Time
		open  bool
		batch *batchLog
		whole hash.Hash // of an RPC request, for when it is longer than buf
	)
	return func(typ, status byte, payload []byte) {
		if !open {
			open, start, size, buf, batch, whole = true, time.Now(), 0, buf[:0], nil, nil
			switch typ {
			case tds.TypeSQLBatch:
				batch = &batchLog{}
			case tds.TypeRPC:
				whole = sha256.New()
			}
		}
		size += len(payload)
		switch {
		case batch != nil:
			batch.feed(payload)
		case whole != nil:
			whole.Write(payload)
			if room := rpcKeepMax - len(buf); room > 0 {
				buf = append(buf, payload[:min(room, len(payload))]...)
			}
		}
		if status&tds.StatusEOM == 0 {
			return
		}
		open = false
		r := request{start: start, rec: tunnel.Record{Time: start.UTC()}}
		switch typ {
		case tds.TypeSQLBatch:
			r.rec.Type = "sql"
			r.rec.Command, r.rec.Truncated = batch.finish()
		case tds.TypeRPC:
			r.rec.Type = "rpc"
			r.rec.Command, r.rec.Data, r.rec.Truncated = describeRPC(buf)
			if size > len(buf) {
				// The end was not read: say how long the request was, and
				// its hash, so it can be matched to a copy.
				if r.rec.Truncated == nil {
					r.rec.Truncated = &tunnel.Cut{}
				}
				t := r.rec.Truncated
				t.Field, t.Length, t.SHA256, t.Unread = "data", int64(size), hex.EncodeToString(whole.Sum(nil)), true
			}
		case tds.TypeAttention:
			r.attention = true
			r.rec.Type, r.rec.Command = "attention", "cancel"
		case tds.TypeBulkLoad:
			r.rec.Type, r.rec.Command = "sql", fmt.Sprintf("(bulk load data, %d bytes)", size)
		default:
			r.silent = true
		}
		pending <- r
	}
}

// batchLog follows a SQL batch as its packets pass: it steps over
// ALL_HEADERS and decodes the UTF-16LE text into a proxy.Clipper, as
// tds.BatchText would (an unpaired surrogate reads as U+FFFD).
type batchLog struct {
	pre     []byte // the payload's start, until where the text starts is known
	text    *proxy.Clipper
	odd     []byte // a byte of a code unit split across packets
	hi      rune   // a high surrogate waiting for its pair, or 0
	scratch []byte
}

func (b *batchLog) feed(p []byte) {
	if b.text != nil {
		b.decode(p)
		return
	}
	b.pre = append(b.pre, p...)
	if len(b.pre) >= tds.MaxAllHeaders {
		b.begin()
	}
}

func (b *batchLog) begin() {
	b.text = proxy.NewClipper(proxy.LogTextMax)
	pre := b.pre
	b.pre = nil
	b.decode(pre[tds.BatchTextStart(pre):])
}

func (b *batchLog) decode(p []byte) {
	if len(b.odd) > 0 {
		p = append(b.odd, p...)
		b.odd = nil
	}
	out := b.scratch[:0]
	for i := 0; i+1 < len(p); i += 2 {
		u := rune(binary.LittleEndian.Uint16(p[i:]))
		if b.hi != 0 {
			r := utf16.DecodeRune(b.hi, u)
			b.hi = 0
			if r != unicode.ReplacementChar {
				out = utf8.AppendRune(out, r)
				continue
			}
			out = utf8.AppendRune(out, unicode.ReplacementChar)
		}
		switch {
		case u >= 0xD800 && u < 0xDC00:
			b.hi = u
		case utf16.IsSurrogate(u):
			out = utf8.AppendRune(out, unicode.ReplacementChar)
		default:
			out = utf8.AppendRune(out, u)
		}
	}
	if len(p)%2 == 1 {
		b.odd = []byte{p[len(p)-1]}
	}
	b.text.Write(out)
	b.scratch = out
}

// finish returns the text to log and, for a long one, what was cut.
func (b *batchLog) finish() (string, *tunnel.Cut) {
	if b.text == nil {
		b.begin()
	}
	if b.hi != 0 {
		b.text.WriteString(string(unicode.ReplacementChar))
	}
	text, cut := b.text.Text()
	if cut != nil {
		cut.Field = "command"
	}
	return text, cut
}

// downstream follows the server's replies and logs each request's outcome.
func (l *logger) downstream(pending <-chan request) func(typ, status byte, payload []byte) {
	scan := tds.NewReplyScanner(l.version)
	return func(typ, status byte, payload []byte) {
		scan.Feed(payload)
		if status&tds.StatusEOM == 0 {
			return
		}
		out := scan.Finish()
		if out.Database != "" {
			l.database = out.Database
		}
		select {
		case r := <-pending:
			l.done(r, out)
			if out.Attention && !r.attention {
				// The reply was cut short by a cancel, whose
				// acknowledgement this reply carries.
				select {
				case a := <-pending:
					l.done(a, out)
				default:
				}
			}
		default: // a reply nobody asked for: nothing to log
		}
	}
}

func (l *logger) done(r request, out tds.Outcome) {
	if r.silent {
		return
	}
	rec := r.rec
	rec.SessionID, rec.ConnectionID, rec.Database = l.d.SessionID, l.d.ConnectionID, l.database
	rec.DurationMS = float64(time.Since(r.start).Microseconds()) / 1000
	rec.Rows, rec.Affected = int64(out.RowsReturned), int64(out.RowsAffected)
	ok := 1
	if len(out.Errors) > 0 {
		ok = 0
		rec.Code = int(out.Errors[0].Number)
		rec.Error, _ = proxy.Clip(out.Errors[0].Text, proxy.LogNoteMax)
	}
	if out.Attention && !r.attention {
		ok, rec.Error = 0, "cancelled by the client"
	}
	if out.Incomplete {
		rec.Error = strings.TrimSpace(rec.Error + " (pamd could not follow the whole reply; counts may be short)")
	}
	rec.Status = &ok
	l.rec(rec)
}

// describeRPC names the procedures called and their parameters, each value
// and the whole list cut to the log's bounds (proxy.Clip).
func describeRPC(payload []byte) (string, string, *tunnel.Cut) {
	calls, err := tds.ParseRPC(payload, rpcKeepMax)
	if err != nil {
		return "(unreadable RPC)", err.Error(), nil
	}
	var names, params []string
	values := 0
	for _, c := range calls {
		names = append(names, c.Proc)
		for _, p := range c.Params {
			name := p.Name
			if name == "" {
				name = "(unnamed)"
			}
			if p.Output {
				name += " OUTPUT"
			}
			v, cut := proxy.Clip(p.Value, proxy.LogValueMax)
			if cut != nil {
				values++
			}
			params = append(params, name+" = "+v)
		}
		if c.Incomplete {
			params = append(params, "…")
		}
	}
	procs, _ := proxy.Clip(strings.Join(names, "; "), proxy.LogNoteMax)
	data, cut := proxy.Clip(strings.Join(params, ", "), proxy.LogTextMax)
	switch {
	case cut != nil:
		cut.Field, cut.Values = "data", values
	case values > 0:
		cut = &tunnel.Cut{Values: values}
	}
	return procs, data, cut
}
