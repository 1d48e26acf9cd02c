package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// exportCast stores recs for a new session and returns its asciicast export.
func exportCast(t *testing.T, recs ...tunnel.Record) (*asciicast.Header, []asciicast.Event) {
	t.Helper()
	st := storetest.Open(t)
	s := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sess := &store.Session{ID: store.NewID(), ResourceName: "box", AccountName: "a", UserName: "u", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	start := time.Now().UTC()
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		for i, r := range recs {
			r.Seq, r.SessionID, r.ConnectionID, r.Time = uint64(i+1), sess.ID, "c1", start.Add(time.Duration(i)*time.Millisecond)
			raw, _ := json.Marshal(r)
			if _, err := tx.AppendRecording(sess.ID, "gw", r.Seq, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v1/sessions/"+sess.ID+"/asciicast", nil)
	req.SetPathValue("id", sess.ID)
	req = req.WithContext(auth.WithCaller(req.Context(), &auth.Caller{User: &store.User{Roles: []string{"admin"}}}))
	w := httptest.NewRecorder()
	if err := s.handleAsciicast(w, req); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	h, events, err := asciicast.Read(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatalf("export: %v\n%s", err, w.Body.String())
	}
	var raw struct{ Width, Height int }
	json.Unmarshal([]byte(strings.SplitN(w.Body.String(), "\n", 2)[0]), &raw)
	h.Width, h.Height = raw.Width, raw.Height // as written, not as Read clamps it
	return h, events
}

// Sizes recorded before the gateway clamped them are clamped in the
// export; a size never reported (0) is the default 80x24, never 0.
func TestAsciicastClampsSizes(t *testing.T) {
	h, events := exportCast(t,
		tunnel.Record{Type: "pty", Term: "xterm", Width: 4_000_000_000, Height: 0},
		tunnel.Record{Type: "r", Width: 99999, Height: -3},
		tunnel.Record{Type: "o", Data: "x"})
	if h.Width != 1000 || h.Height != 24 {
		t.Fatalf("header %dx%d", h.Width, h.Height)
	}
	if len(events) != 2 || events[0].Code != "r" || events[0].Data != "1000x24" {
		t.Fatalf("events %+v", events)
	}
}

// A terminal whose client reported no size at all replays at 80x24.
func TestAsciicastUnreportedSizeIsDefault(t *testing.T) {
	h, _ := exportCast(t, tunnel.Record{Type: "pty", Term: "xterm"}, tunnel.Record{Type: "o", Data: "x"})
	if h.Width != 80 || h.Height != 24 {
		t.Fatalf("header %dx%d, want 80x24", h.Width, h.Height)
	}
}

// A channel without a terminal is exported readably with standard codes:
// input as "i" and echoed, stdout and stderr (red) as "o", LF as CRLF.
func TestAsciicastWithoutTerminal(t *testing.T) {
	_, events := exportCast(t,
		tunnel.Record{Type: "shell"},
		tunnel.Record{Type: "i", Data: "echo hi\n"},
		tunnel.Record{Type: "o", Data: "hi\n"},
		tunnel.Record{Type: "e", Data: "oops\n"})
	var out strings.Builder
	var in string
	for _, e := range events {
		switch e.Code {
		case "o":
			out.WriteString(e.Data)
		case "i":
			in += e.Data
		default:
			t.Fatalf("event code %q", e.Code)
		}
	}
	if in != "echo hi\n" || out.String() != "echo hi\r\nhi\r\n\x1b[31moops\r\n\x1b[0m" {
		t.Fatalf("input %q output %q", in, out.String())
	}
}
