package gateway

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pamd/pamd/protocol/tunnel"
)

// spool keeps session records on the gateway's disk until the server has
// stored them, so a server outage or restart loses nothing. Each record is
// one line, sealed with AES-256-GCM under a key kept beside the spool; the
// highest sequence the server acknowledged is kept in a second file.
//
// add is called on the relay's path, so it only queues: a writer goroutine
// seals and writes queued records in batches, and only records on disk are
// handed to the uploader.
//
// Every size here is of the JSON encoding, the form records travel in, never
// of the raw data: terminal output of '<' or control bytes grows sixfold.
// add splits terminal data over records of at most tunnel.MaxRecordBody, and
// batch fills a message up to its limit, so no record or batch can stop the
// upload; a record that cannot be split is moved to a dead-letter file and
// replaced by a small "dropped" record that the server stores and audits.
type spool struct {
	log     *slog.Logger
	mu      sync.Mutex
	dir     string
	f       *os.File
	aead    cipher.AEAD
	next    uint64
	acked   uint64
	written uint64        // highest seq on disk
	pending []*spooled    // not yet acknowledged, in order
	queue   []*spooled    // not yet on disk
	wake    chan struct{} // to the uploader: records are on disk
	write   chan struct{} // to the writer: records are queued
	done    chan struct{} // closing: the writer flushes and stops
	stopped chan struct{}
}

// spooled is a record with the length of its encoding (an estimate until
// the writer has encoded it).
type spooled struct {
	tunnel.Record
	size int
}

const (
	spoolFile  = "records.spool"
	spoolKey   = "records.key"
	spoolAcked = "records.acked"
	spoolDead  = "records.dead" // sealed like the spool; records too large to upload
)

// batchEnvelope is what a records message adds to its batch's encoding
// beyond the records and the commas between them.
var batchEnvelope = func() int {
	b, _ := json.Marshal(tunnel.Message{Type: tunnel.MsgRecords, Detail: json.RawMessage("[]")})
	return len(b)
}()

func openSpool(dir string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: spool dir: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(dir, spoolKey))
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		err = os.WriteFile(filepath.Join(dir, spoolKey), key, 0o600)
	}
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("gateway: spool key: %v", err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	s := &spool{log: log, dir: dir, aead: aead, wake: make(chan struct{}, 1), write: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	if b, err := os.ReadFile(filepath.Join(dir, spoolAcked)); err == nil {
		s.acked, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	s.next = s.acked + 1
	if err := s.load(); err != nil {
		return nil, err
	}
	if s.f, err = os.OpenFile(filepath.Join(dir, spoolFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("gateway: spool: %w", err)
	}
	s.written = s.next - 1
	go s.writer()
	return s, nil
}

// load reads what an earlier run left unacknowledged. A torn last line (a
// crash mid-write) is skipped.
func (s *spool) load() error {
	f, err := os.Open(filepath.Join(s.dir, spoolFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: spool: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var r tunnel.Record
		size, err := s.unseal(sc.Bytes(), &r)
		if err != nil {
			continue
		}
		if r.Seq >= s.next {
			s.next = r.Seq + 1
		}
		if r.Seq > s.acked {
			s.pending = append(s.pending, &spooled{Record: r, size: size})
		}
	}
	if err := sc.Err(); err != nil {
		s.log.Warn("spool: records after an unreadable line are not uploaded", "file", spoolFile, "err", err)
	}
	return nil
}

func (s *spool) seal(r *tunnel.Record) ([]byte, error) {
	line, _, err := s.sealSized(r)
	return line, err
}

// sealSized seals r into one spool line and returns the length of r's encoding too.
func (s *spool) sealSized(r *tunnel.Record) ([]byte, int, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, 0, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, nil)
	return append(base64.RawStdEncoding.AppendEncode(nil, sealed), '\n'), len(plain), nil
}

// unseal opens one spool line into r and returns the length of r's encoding.
func (s *spool) unseal(line []byte, r *tunnel.Record) (int, error) {
	sealed, err := base64.RawStdEncoding.DecodeString(string(line))
	ns := s.aead.NonceSize()
	if err != nil || len(sealed) < ns {
		return 0, errors.New("bad spool line")
	}
	plain, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], nil)
	if err != nil {
		return 0, err
	}
	return len(plain), json.Unmarshal(plain, r)
}

// add numbers the record (or the records it is split into) and queues it for
// the disk and then the server.
func (s *spool) add(r tunnel.Record) {
	pieces := s.fit(r)
	s.mu.Lock()
	for _, p := range pieces {
		p.Seq = s.next
		s.next++
		s.queue = append(s.queue, p)
		s.pending = append(s.pending, p)
	}
	s.mu.Unlock()
	signal(s.write)
}

// sizeBound is at least the length of r's encoding, cheaply: every string
// byte escapes to 6 at most, and the rest (names, numbers, time) is short.
func sizeBound(r *tunnel.Record) int {
	return 1024 + 6*(len(r.SessionID)+len(r.ConnectionID)+len(r.Type)+len(r.Data)+len(r.Term)+
		len(r.Command)+len(r.Op)+len(r.Path)+len(r.Database)+len(r.Collection)+len(r.Error))
}

// encodedSize is the length of r's encoding with the longest sequence number.
func encodedSize(r *tunnel.Record) int {
	m := *r
	m.Seq = math.MaxUint64
	b, err := json.Marshal(&m)
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}

// fit returns r as records of at most tunnel.MaxRecordBody encoded: r
// itself, or its stream data (o, i, e) cut on character boundaries over several
// records of its type and time; a record that cannot be cut is moved aside.
func (s *spool) fit(r tunnel.Record) []*spooled {
	if b := sizeBound(&r); b <= tunnel.MaxRecordBody {
		return []*spooled{{Record: r, size: b}}
	}
	size := encodedSize(&r)
	if size <= tunnel.MaxRecordBody {
		return []*spooled{{Record: r, size: size}}
	}
	if r.Type == "o" || r.Type == "i" || r.Type == "e" { // streams: the pieces concatenate
		bare := r
		bare.Data = ""
		room := (tunnel.MaxRecordBody - encodedSize(&bare) - len(`,"data":""`)) / 6
		if room >= 1024 {
			var out []*spooled
			for rest := r.Data; rest != ""; {
				cut := min(room, len(rest))
				for i := 0; i < utf8.UTFMax && cut < len(rest) && cut > 1 && !utf8.RuneStart(rest[cut]); i++ {
					cut--
				}
				piece := bare
				piece.Data, rest = rest[:cut], rest[cut:]
				out = append(out, &spooled{Record: piece, size: encodedSize(&piece)})
			}
			return out
		}
	}
	d := s.deadLetter(&r, size)
	return []*spooled{{Record: d, size: encodedSize(&d)}}
}

// deadLetter appends r (sealed) to the dead-letter file and returns the
// "dropped" record that stands for it, with r's sequence number.
func (s *spool) deadLetter(r *tunnel.Record, size int) tunnel.Record {
	line, err := s.seal(r)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(filepath.Join(s.dir, spoolDead), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			_, err = f.Write(line)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	s.log.Warn("session record too large to upload; moved to the dead-letter file", "session", r.SessionID,
		"connection", r.ConnectionID, "type", r.Type, "bytes", size, "file", filepath.Join(s.dir, spoolDead), "err", err)
	kept := "the gateway keeps it in " + spoolDead
	if err != nil {
		kept = "writing it to the gateway's " + spoolDead + " failed"
	}
	return tunnel.Record{Seq: r.Seq, SessionID: r.SessionID, ConnectionID: r.ConnectionID, Channel: r.Channel, Time: r.Time,
		Type: "dropped", Op: r.Type, Size: int64(size),
		Data: fmt.Sprintf("a %s record of %d bytes encoded was too large to upload; %s", r.Type, size, kept)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// writer seals queued records and appends them in one write a batch.
func (s *spool) writer() {
	defer close(s.stopped)
	for {
		select {
		case <-s.write:
		case <-s.done:
			s.flush()
			return
		}
		s.flush()
	}
}

func (s *spool) flush() {
	s.mu.Lock()
	queue := s.queue
	s.queue = nil
	s.mu.Unlock()
	if len(queue) == 0 {
		return
	}
	var buf []byte
	sizes := make([]int, len(queue))
	for i, e := range queue {
		line, size, err := s.sealSized(&e.Record)
		if err == nil {
			buf = append(buf, line...)
			sizes[i] = size
		}
	}
	s.mu.Lock()
	for i, e := range queue {
		if sizes[i] > 0 {
			e.size = sizes[i]
		}
	}
	_, err := s.f.Write(buf)
	s.written = queue[len(queue)-1].Seq
	s.mu.Unlock()
	if err != nil {
		// Kept in memory still; the server gets them while this process lives.
		s.log.Warn("spool write failed; records are kept in memory only", "records", len(queue), "err", err)
	}
	signal(s.wake)
}

// batch returns the unacknowledged records already on disk, from the
// oldest, that fit in a records message of at most max bytes. A first
// record that alone does not fit (left by an older gateway) is moved to the
// dead-letter file, so it cannot hold up the rest.
func (s *spool) batch(max int) []tunnel.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, batchEnvelope
	for n < len(s.pending) && s.pending[n].Seq <= s.written {
		e := s.pending[n]
		if n == 0 && size+e.size > max {
			e.Record = s.deadLetter(&e.Record, e.size)
			e.size = encodedSize(&e.Record)
		}
		if n > 0 {
			size++ // the comma
		}
		if size+e.size > max {
			break
		}
		size += e.size
		n++
	}
	out := make([]tunnel.Record, n)
	for i, e := range s.pending[:n] {
		out[i] = e.Record
	}
	return out
}

// backlog says what the server has yet to acknowledge.
func (s *spool) backlog() tunnel.Backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := tunnel.Backlog{Records: len(s.pending)}
	for _, e := range s.pending {
		b.Bytes += int64(e.size)
	}
	return b
}

// ack drops everything up to seq; when nothing is left the file restarts.
func (s *spool) ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for i < len(s.pending) && s.pending[i].Seq <= seq {
		i++
	}
	s.pending = s.pending[i:]
	if seq > s.acked {
		s.acked = seq
	}
	if err := os.WriteFile(filepath.Join(s.dir, spoolAcked), []byte(strconv.FormatUint(s.acked, 10)), 0o600); err != nil {
		return err
	}
	if len(s.pending) == 0 {
		return s.f.Truncate(0)
	}
	return nil
}

// close writes what is queued and closes the file.
func (s *spool) close() {
	close(s.done)
	<-s.stopped
	s.f.Close()
}
