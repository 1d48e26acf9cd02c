package postgresproxy

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pamd/pamd/protocol/tunnel"
)

// The query log goes to the recorder in batches: statements that finish
// within batchWindow of each other travel as one batch record
// (tunnel.RecordBatch), so
// a busy connection costs the spool, the upload and the server's store one
// record per batch rather than one per statement. A lone statement (a
// batch of one) goes as its own record, as it always did.
//
// A batch carries the connection's session, connection and database, the
// first statement's time, and in Data a JSON array of the statements'
// records (time, type, command, data, op, status, error, path, size, rows,
// duration_ms, truncated: the fields a query, execute or copy record has,
// with the same names), in the order they finished. The server reads them
// back one by one (tunnel.Unbatch), so the log shows them as before.
const (
	// batchWindow bounds how long a finished statement waits in its
	// connection's batch: what a gateway crash can lose beyond the spool's
	// own window.
	batchWindow = 100 * time.Millisecond
	// batchMax bounds a batch's encoding, so that its record stays under
	// tunnel.MaxRecordBody however JSON escapes it again (6 bytes a byte at
	// most) and the spool never has to encode it to measure it.
	batchMax = 32 << 10
	// batchEntryMax bounds one statement's encoding in a batch; a longer
	// one goes as its own record.
	batchEntryMax = batchMax / 2
	// batchCount bounds the statements in one batch.
	batchCount = 1000
)

// batch is the statements waiting to be recorded together.
type batch struct {
	// buf is "[" and the entries so far, comma-separated: a buffer of
	// batchBufs while the batch holds any.
	buf   *[]byte
	n     int
	first tunnel.Record // the first statement's record, sent alone if no other joins it
	timer *time.Timer
	ended bool
}

// batchBufs holds the buffers of batches.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, batchMax+1); return &b }}

// emit records r, batched with the connection's other statements when it
// is one. The caller holds l.mu.
func (l *logger) emit(r tunnel.Record) {
	b := &l.batch
	if r.Type != "query" && r.Type != "execute" && r.Type != "copy" {
		l.flushBatch()
		l.rec(r)
		return
	}
	if b.buf == nil {
		b.buf = batchBufs.Get().(*[]byte)
	}
	buf := *b.buf
	mark := len(buf)
	if b.n == 0 {
		buf = append(buf, '[')
	} else {
		buf = append(buf, ',')
	}
	buf, err := appendEntry(buf, &r)
	*b.buf = buf[:mark]
	if err != nil || len(buf)-mark > batchEntryMax {
		l.flushBatch()
		l.rec(r)
		return
	}
	if b.n > 0 && len(buf)+1 > batchMax {
		l.flushBatch()
		l.emit(r)
		return
	}
	*b.buf = buf
	b.n++
	if b.n == 1 {
		b.first = r
		if b.timer == nil {
			b.timer = time.AfterFunc(batchWindow, l.tick)
		} else {
			b.timer.Reset(batchWindow)
		}
	}
	if b.n >= batchCount {
		l.flushBatch()
	}
}

// tick records the batch once its first statement has waited batchWindow.
func (l *logger) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.batch.ended {
		l.flushBatch()
	}
}

// flushBatch records what the batch holds: a lone statement as its own
// record, more as one batch record. The caller holds l.mu.
func (l *logger) flushBatch() {
	b := &l.batch
	if b.timer != nil {
		b.timer.Stop()
	}
	switch b.n {
	case 0:
	case 1:
		l.rec(b.first)
	default:
		l.rec(tunnel.Record{SessionID: l.d.SessionID, ConnectionID: l.d.ConnectionID, Database: l.database,
			Time: b.first.Time, Type: tunnel.RecordBatch, Data: string(append(*b.buf, ']'))})
	}
	b.n, b.first = 0, tunnel.Record{}
	if b.buf != nil { // an idle connection holds no buffer
		if cap(*b.buf) <= batchMax+batchEntryMax+1 { // not grown by a statement too long for a batch
			*b.buf = (*b.buf)[:0]
			batchBufs.Put(b.buf)
		}
		b.buf = nil
	}
}

// appendEntry appends a statement's record in a batch: the fields of r
// that are its own, named as in tunnel.Record's encoding.
func appendEntry(dst []byte, r *tunnel.Record) ([]byte, error) {
	dst = append(dst, `{"time":"`...)
	dst = r.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":`...)
	dst = appendString(dst, r.Type)
	for _, f := range [...]struct{ name, v string }{{"data", r.Data}, {"command", r.Command}, {"op", r.Op}, {"path", r.Path}, {"error", r.Error}} {
		if f.v != "" {
			dst = append(dst, ',', '"')
			dst = append(dst, f.name...)
			dst = append(dst, '"', ':')
			dst = appendString(dst, f.v)
		}
	}
	if r.Status != nil {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(*r.Status), 10)
	}
	if r.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, r.Size, 10)
	}
	if r.Rows != 0 {
		dst = append(dst, `,"rows":`...)
		dst = strconv.AppendInt(dst, r.Rows, 10)
	}
	if r.DurationMS != 0 {
		if math.IsInf(r.DurationMS, 0) || math.IsNaN(r.DurationMS) {
			return dst, errors.New("duration is not a number")
		}
		dst = append(dst, `,"duration_ms":`...)
		dst = strconv.AppendFloat(dst, r.DurationMS, 'f', -1, 64)
	}
	if r.Truncated != nil {
		cut, err := json.Marshal(r.Truncated)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `,"truncated":`...)
		dst = append(dst, cut...)
	}
	return append(dst, '}'), nil
}

// appendString appends s as a JSON string, as encoding/json writes it
// but for <, > and &, which it leaves as they are: invalid UTF-8 becomes
// U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
