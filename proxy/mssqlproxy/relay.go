package mssqlproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
)

const (
	// batchTextMax bounds the SQL text kept in the log per batch.
	batchTextMax = 64 << 10
	// paramValueMax bounds each RPC parameter value in the log.
	paramValueMax = 1 << 10
	// rpcKeepMax bounds the part of an RPC request read for its log entry.
	rpcKeepMax = 1 << 20
)

// logger turns requests and their outcomes into records.
type logger struct {
	d        *tunnel.Descriptor
	rec      Recorder
	database string
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

// pump copies whole packets from src to dst, showing each to see, and
// flushes when src has nothing more at hand.
func pump(src, dst net.Conn, see func(typ, status byte, payload []byte)) error {
	br := bufio.NewReaderSize(src, 64<<10)
	bw := bufio.NewWriterSize(dst, 64<<10)
	pkt := make([]byte, tds.MaxPacket)
	for {
		if _, err := io.ReadFull(br, pkt[:tds.HeaderLen]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint16(pkt[2:4]))
		if n < tds.HeaderLen || n > tds.MaxPacket {
			return fmt.Errorf("%w: packet length %d", tds.ErrLength, n)
		}
		if _, err := io.ReadFull(br, pkt[tds.HeaderLen:n]); err != nil {
			return err
		}
		see(pkt[0], pkt[1], pkt[tds.HeaderLen:n])
		if _, err := bw.Write(pkt[:n]); err != nil {
			return err
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// upstream reads the client's messages and queues them for their replies.
func (l *logger) upstream(pending chan<- request) func(typ, status byte, payload []byte) {
	var (
		buf   []byte
		size  int
		start time.Time
		open  bool
	)
	return func(typ, status byte, payload []byte) {
		if !open {
			open, start, size, buf = true, time.Now(), 0, buf[:0]
		}
		size += len(payload)
		keep := rpcKeepMax
		if typ == tds.TypeSQLBatch {
			keep = 8 + 2*batchTextMax + 64 // headers and the text kept
		}
		if room := keep - len(buf); room > 0 {
			buf = append(buf, payload[:min(room, len(payload))]...)
		}
		if status&tds.StatusEOM == 0 {
			return
		}
		open = false
		r := request{start: start, rec: tunnel.Record{Time: start.UTC()}}
		switch typ {
		case tds.TypeSQLBatch:
			r.rec.Type = "sql"
			text, err := tds.BatchText(buf[:len(buf)&^1])
			if err != nil {
				text = "(unreadable batch: " + err.Error() + ")"
			}
			r.rec.Command = clipText(text, size)
		case tds.TypeRPC:
			r.rec.Type = "rpc"
			r.rec.Command, r.rec.Data = describeRPC(buf)
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

// downstream follows the server's replies and logs each request's outcome.
func (l *logger) downstream(pending <-chan request) func(typ, status byte, payload []byte) {
	var scan tds.ReplyScanner
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
		rec.Code, rec.Error = int(out.Errors[0].Number), out.Errors[0].Text
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

// describeRPC names the procedures called and their parameters.
func describeRPC(payload []byte) (string, string) {
	calls, err := tds.ParseRPC(payload, paramValueMax)
	if err != nil {
		return "(unreadable RPC)", err.Error()
	}
	var names, params []string
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
			params = append(params, name+" = "+p.Value)
		}
		if c.Incomplete {
			params = append(params, "…")
		}
	}
	return strings.Join(names, "; "), strings.Join(params, ", ")
}

// clipText keeps the start of a long batch and says how long it was.
func clipText(text string, payloadBytes int) string {
	if payloadBytes <= 8+2*batchTextMax+64 && len([]rune(text)) <= batchTextMax {
		return text
	}
	r := []rune(text)
	if len(r) > batchTextMax {
		r = r[:batchTextMax]
	}
	return string(r) + fmt.Sprintf("… (batch of %d bytes)", payloadBytes)
}
