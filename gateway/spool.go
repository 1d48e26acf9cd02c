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
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

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
type spool struct {
	mu      sync.Mutex
	dir     string
	f       *os.File
	aead    cipher.AEAD
	next    uint64
	acked   uint64
	written uint64          // highest seq on disk
	pending []tunnel.Record // not yet acknowledged, in order
	queue   []tunnel.Record // not yet on disk
	wake    chan struct{}   // to the uploader: records are on disk
	write   chan struct{}   // to the writer: records are queued
	done    chan struct{}   // closing: the writer flushes and stops
	stopped chan struct{}
}

const (
	spoolFile  = "records.spool"
	spoolKey   = "records.key"
	spoolAcked = "records.acked"
)

func openSpool(dir string) (*spool, error) {
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
	s := &spool{dir: dir, aead: aead, wake: make(chan struct{}, 1), write: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
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
		if s.unseal(sc.Bytes(), &r) != nil {
			continue
		}
		if r.Seq >= s.next {
			s.next = r.Seq + 1
		}
		if r.Seq > s.acked {
			s.pending = append(s.pending, r)
		}
	}
	return nil
}

func (s *spool) seal(r *tunnel.Record) ([]byte, error) {
	plain, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := s.aead.Seal(nonce, nonce, plain, nil)
	return append(base64.RawStdEncoding.AppendEncode(nil, sealed), '\n'), nil
}

func (s *spool) unseal(line []byte, r *tunnel.Record) error {
	sealed, err := base64.RawStdEncoding.DecodeString(string(line))
	ns := s.aead.NonceSize()
	if err != nil || len(sealed) < ns {
		return errors.New("bad spool line")
	}
	plain, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, r)
}

// add numbers the record and queues it for the disk and then the server.
func (s *spool) add(r tunnel.Record) {
	s.mu.Lock()
	r.Seq = s.next
	s.next++
	s.queue = append(s.queue, r)
	s.pending = append(s.pending, r)
	s.mu.Unlock()
	signal(s.write)
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
	for i := range queue {
		line, err := s.seal(&queue[i])
		if err == nil {
			buf = append(buf, line...)
		}
	}
	s.mu.Lock()
	_, err := s.f.Write(buf)
	s.written = queue[len(queue)-1].Seq
	s.mu.Unlock()
	if err != nil {
		// Kept in memory still; the server gets them while this process lives.
		fmt.Fprintf(os.Stderr, "pamd gateway: spool write failed: %v\n", err)
	}
	signal(s.wake)
}

// batch returns unacknowledged records already on disk, up to about max
// bytes of data.
func (s *spool) batch(max int) []tunnel.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.pending) && s.pending[n].Seq <= s.written && (n == 0 || size < max) {
		size += len(s.pending[n].Data) + 256
		n++
	}
	return append([]tunnel.Record(nil), s.pending[:n]...)
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
