package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
)

func TestSpoolKeepsUnacknowledgedRecordsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"one", "two", "secret-typed-text"} {
		s.add(tunnel.Record{SessionID: "s1", Type: "o", Data: d})
	}
	waitWritten(t, s, 3)
	if b := s.batch(1 << 20); len(b) != 3 || b[0].Seq != 1 || b[2].Seq != 3 {
		t.Fatalf("batch %+v", b)
	}
	s.ack(1)
	s.close()

	// The process dies; a new one finds the two unacknowledged records.
	s, err = openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := s.batch(1 << 20)
	if len(b) != 2 || b[0].Data != "two" || b[1].Seq != 3 {
		t.Fatalf("after restart: %+v", b)
	}
	s.add(tunnel.Record{Type: "o", Data: "four"})
	waitWritten(t, s, 4)
	if b := s.batch(1 << 20); b[len(b)-1].Seq != 4 {
		t.Fatalf("sequence restarted: %+v", b)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, spoolFile))
	if bytes.Contains(raw, []byte("secret-typed-text")) {
		t.Fatal("spool holds a record in the clear")
	}
	s.ack(4)
	if st, _ := os.Stat(filepath.Join(dir, spoolFile)); st.Size() != 0 {
		t.Fatalf("spool not emptied after everything was acknowledged (%d bytes)", st.Size())
	}
	// A torn last line (a crash mid-write) is skipped, not fatal.
	s.add(tunnel.Record{Type: "o", Data: "five"})
	s.close()
	f, _ := os.OpenFile(filepath.Join(dir, spoolFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("AAAA-torn")
	f.Close()
	s, err = openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b := s.batch(1 << 20); len(b) != 1 || b[0].Data != "five" || b[0].Seq != 5 {
		t.Fatalf("after a torn line: %+v", b)
	}
}

func waitWritten(t *testing.T, s *spool, seq uint64) {
	t.Helper()
	for i := 0; i < 200; i++ {
		s.mu.Lock()
		w := s.written
		s.mu.Unlock()
		if w >= seq {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("record %d never reached the disk", seq)
}
