package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pamd/pamd/protocol/tunnel"
)

func TestSpoolKeepsUnacknowledgedRecordsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	s, err = openSpool(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	s, err = openSpool(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if b := s.batch(1 << 20); len(b) != 1 || b[0].Data != "five" || b[0].Seq != 5 {
		t.Fatalf("after a torn line: %+v", b)
	}
}

func waitWritten(t *testing.T, s *spool, seq uint64) {
	t.Helper()
	for i := 0; i < 2000; i++ { // up to 10 s: the machine may be busy
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

// TestSpoolBatchesFitTheirMessageWhenEncoded: sizes are of the JSON
// encoding, where '<' and control bytes take 6 bytes each. 3 MB of them,
// as the SSH relay records it (32 KB reads) and as one record, go in
// batches that each fit one message, and every byte arrives, in order.
func TestSpoolBatchesFitTheirMessageWhenEncoded(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var ctl []byte
	for i := 0; len(ctl) < 1<<20; i++ {
		ctl = append(ctl, byte(i%32), 0x7f)
	}
	var want strings.Builder
	out := func(d string) {
		want.WriteString(d)
		s.add(tunnel.Record{SessionID: "s1", ConnectionID: "c1", Channel: 1, Type: "o", Data: d})
	}
	lt := strings.Repeat("<", 3<<20)
	for i := 0; i < len(lt); i += 32 << 10 {
		out(lt[i : i+32<<10])
	}
	out(lt)                                  // one record of 3 MB
	out(string(ctl))                         // control bytes
	out(strings.Repeat("é<\u2028&", 300000)) // multi-byte characters are cut whole
	// A command too long to upload whole is moved aside, not retried forever.
	s.add(tunnel.Record{SessionID: "s1", ConnectionID: "c1", Channel: 2, Type: "exec", Command: lt[:1<<20]})
	out("after")
	s.mu.Lock()
	last := s.next - 1
	s.mu.Unlock()
	waitWritten(t, s, last)

	var got strings.Builder
	batches, dropped := 0, 0
	for {
		b := s.batch(tunnel.MaxMessageBody)
		if len(b) == 0 {
			break
		}
		batches++
		detail, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&tunnel.Message{Type: tunnel.MsgRecords, Detail: detail}).Append(nil); err != nil {
			t.Fatalf("batch %d of %d records does not fit a message: %v", batches, len(b), err)
		}
		for _, r := range b {
			if enc, _ := json.Marshal(r); len(enc) > tunnel.MaxRecordBody {
				t.Fatalf("a record of %d bytes encoded", len(enc))
			}
			switch r.Type {
			case "o":
				got.WriteString(r.Data)
			case "dropped":
				dropped++
				if r.Op != "exec" || r.SessionID != "s1" || r.Channel != 2 || r.Size < 6<<20 {
					t.Fatalf("dropped record %+v", r)
				}
			}
		}
		if err := s.ack(b[len(b)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	if got.Len() != want.Len() || got.String() != want.String() {
		t.Fatalf("uploaded %d bytes of terminal data, recorded %d", got.Len(), want.Len())
	}
	if dropped != 1 {
		t.Fatalf("%d dropped records, want 1", dropped)
	}
	if batches < 20 {
		t.Fatalf("%d batches for over 18 MB encoded", batches)
	}
	if b := s.backlog(); b.Records != 0 || b.Bytes != 0 {
		t.Fatalf("backlog after everything was acknowledged: %+v", b)
	}
	// The command is kept, sealed, in the dead-letter file.
	raw, err := os.ReadFile(filepath.Join(dir, spoolDead))
	if err != nil {
		t.Fatal(err)
	}
	var dead tunnel.Record
	if _, err := s.unseal(bytes.TrimSpace(raw), &dead); err != nil || dead.Command != lt[:1<<20] {
		t.Fatalf("dead-letter file: %v", err)
	}
}

// TestSpoolMovesAsideARecordThatCannotBeSent: a record an older gateway
// spooled that alone does not fit a message is replaced by a "dropped"
// record with its sequence number; the records after it go.
func TestSpoolMovesAsideARecordThatCannotBeSent(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := openSpool(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	big := tunnel.Record{Seq: 1, SessionID: "s1", Type: "o", Data: strings.Repeat(">", 200<<10)}
	line, err := s.seal(&big)
	if err != nil {
		t.Fatal(err)
	}
	s.close()
	f, _ := os.OpenFile(filepath.Join(dir, spoolFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(line)
	f.Close()
	if s, err = openSpool(dir, log); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.add(tunnel.Record{SessionID: "s1", Type: "o", Data: "next"})
	waitWritten(t, s, 2)
	b := s.batch(tunnel.MaxMessageBody)
	if len(b) != 2 || b[0].Seq != 1 || b[0].Type != "dropped" || b[0].Op != "o" || b[1].Data != "next" {
		for _, r := range b {
			t.Errorf("seq %d type %s op %s, %d bytes of data", r.Seq, r.Type, r.Op, len(r.Data))
		}
		t.Fatalf("batch of %d records, want the dropped record then the next", len(b))
	}
}

// FuzzSpoolFit: terminal data of any bytes, repeated past the record limit,
// is cut into records that each fit and together hold every byte; valid
// UTF-8 is cut on character boundaries only.
func FuzzSpoolFit(f *testing.F) {
	for _, seed := range []string{"<", "\x00\x1f\x7f", "é<&>", "\u2028", "\xff\xfe", "a\xe2\x82"} {
		f.Add(seed)
	}
	s, err := openSpool(f.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.close)
	f.Fuzz(func(t *testing.T, in string) {
		if in == "" || len(in) > 4096 {
			return
		}
		data := strings.Repeat(in, (300<<10)/len(in)+1)
		var got strings.Builder
		for _, p := range s.fit(tunnel.Record{SessionID: "s1", ConnectionID: "c1", Type: "o", Data: data}) {
			if p.Type != "o" || p.SessionID != "s1" {
				t.Fatalf("piece of type %s", p.Type)
			}
			if n := encodedSize(&p.Record); n > tunnel.MaxRecordBody || n > p.size+32 {
				t.Fatalf("piece of %d bytes encoded (counted %d)", n, p.size)
			}
			if utf8.ValidString(data) && !utf8.ValidString(p.Data) {
				t.Fatal("a character was cut")
			}
			got.WriteString(p.Data)
		}
		if got.String() != data {
			t.Fatalf("pieces hold %d bytes of %d", got.Len(), len(data))
		}
	})
}

// FuzzSpoolUnseal: a spool line of any bytes is refused or read, never a panic.
func FuzzSpoolUnseal(f *testing.F) {
	s, err := openSpool(f.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.close)
	line, _ := s.seal(&tunnel.Record{Seq: 1, Type: "o", Data: "x"})
	f.Add(bytes.TrimSpace(line))
	f.Add([]byte("AAAA-torn"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r tunnel.Record
		s.unseal(in, &r)
	})
}
