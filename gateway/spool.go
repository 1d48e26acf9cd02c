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
type spool struct {
	mu      sync.Mutex
	dir     string
	f       *os.File
	aead    cipher.AEAD
	next    uint64
	acked   uint64
	pending []tunnel.Record // not yet acknowledged, in order
	wake    chan struct{}
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
	s := &spool{dir: dir, aead: aead, wake: make(chan struct{}, 1)}
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

// add numbers the record, writes it to disk and queues it for the server.
func (s *spool) add(r tunnel.Record) {
	s.mu.Lock()
	r.Seq = s.next
	s.next++
	line, err := s.seal(&r)
	if err == nil {
		_, err = s.f.Write(line)
	}
	s.pending = append(s.pending, r)
	s.mu.Unlock()
	if err != nil {
		// Kept in memory still; the server gets it while this process lives.
		fmt.Fprintf(os.Stderr, "pamd gateway: spool write failed: %v\n", err)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// batch returns unacknowledged records, up to about max bytes of data.
func (s *spool) batch(max int) []tunnel.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.pending) && (n == 0 || size < max) {
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

func (s *spool) close() { s.f.Close() }
