package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// sessionRecords returns a session's records if the caller may see the
// session, those of a batch (tunnel.RecordBatch) one by one.
func (s *API) sessionRecords(r *http.Request) (*store.Session, []tunnel.Record, error) {
	c := auth.CallerOf(r)
	var sess *store.Session
	var raws []json.RawMessage
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		sess, err = tx.Session(r.PathValue("id"))
		if err != nil || (!c.CanRead() && sess.UserID != c.User.ID) {
			return api.Errorf(http.StatusNotFound, "no session %q", r.PathValue("id"))
		}
		raws, err = tx.Recordings(sess.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]tunnel.Record, 0, len(raws))
	for _, raw := range raws {
		var rec tunnel.Record
		if json.Unmarshal(raw, &rec) != nil {
			continue
		}
		recs, err := tunnel.Unbatch(rec)
		if err != nil {
			rec.Type, rec.Data = "error", "pamd: a batch of records the gateway sent does not read: "+err.Error()
			recs = []tunnel.Record{rec}
		}
		out = append(out, recs...)
	}
	return sess, out, nil
}

// handleSessionRecords answers a session's records, each with the summary
// its resource's kind renders, so that every client shows them alike.
func (s *API) handleSessionRecords(w http.ResponseWriter, r *http.Request) error {
	sess, recs, err := s.sessionRecords(r)
	if err != nil {
		return err
	}
	var k kind.Kind
	s.st.View(func(tx *store.Tx) error {
		if res, err := tx.Resource(sess.ResourceID); err == nil {
			k, _ = s.kinds.Of(res.Type)
		}
		return nil
	})
	out := make([]api.Record, len(recs))
	for i := range recs {
		out[i] = api.Record{Record: recs[i], Summary: s.kinds.Summary(k, &recs[i])}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleAsciicast renders one channel of a session as asciicast v2.
// Without ?connection=&channel= it takes the first channel that had a pty,
// or else the first shell or command. A channel without a terminal is
// rendered as asciicast.Plain says (LF as CRLF, input echoed, stderr red);
// sizes are clamped, whatever the records say.
func (s *API) handleAsciicast(w http.ResponseWriter, r *http.Request) error {
	sess, recs, err := s.sessionRecords(r)
	if err != nil {
		return err
	}
	conn, chanStr := r.URL.Query().Get("connection"), r.URL.Query().Get("channel")
	channel := -1
	if chanStr != "" {
		if channel, err = strconv.Atoi(chanStr); err != nil {
			return api.Errorf(http.StatusBadRequest, "channel %q: want a number", chanStr)
		}
	}
	var first *tunnel.Record // the record that starts the channel: a pty, or else a shell or exec
	for _, types := range [][]string{{"pty"}, {"shell", "exec"}} {
		for i := range recs {
			if slices.Contains(types, recs[i].Type) && (conn == "" || recs[i].ConnectionID == conn) && (channel < 0 || recs[i].Channel == channel) {
				first = &recs[i]
				break
			}
		}
		if first != nil {
			break
		}
	}
	if first == nil {
		return api.Errorf(http.StatusNotFound, "session %s has no recorded terminal, shell or command", sess.ID)
	}
	terminal := first.Type == "pty"
	h := asciicast.Header{
		Width: 80, Height: 24, Timestamp: first.Time.Unix(),
		Title: fmt.Sprintf("pamd session %s: %s on %s/%s", sess.ID, sess.UserName, sess.ResourceName, sess.AccountName),
	}
	if terminal {
		h.Width, h.Height = termSize(first.Width, h.Width), termSize(first.Height, h.Height)
		h.Env = map[string]string{"TERM": first.Term}
	} else {
		h.Title += " (no terminal: " + describeStart(first) + ")"
	}
	var buf bytes.Buffer
	cw, err := asciicast.NewWriter(&buf, h)
	if err != nil {
		return err
	}
	start := first.Time
	for _, rec := range recs {
		if rec.ConnectionID != first.ConnectionID || rec.Channel != first.Channel {
			continue
		}
		t := rec.Time.Sub(start).Seconds()
		switch {
		case rec.Type == "r":
			err = cw.Write(asciicast.Event{Time: t, Code: "r", Data: fmt.Sprintf("%dx%d", termSize(rec.Width, h.Width), termSize(rec.Height, h.Height))})
		case terminal && (rec.Type == "o" || rec.Type == "i"):
			err = cw.Write(asciicast.Event{Time: t, Code: rec.Type, Data: rec.Data})
		case terminal && rec.Type == "e":
			err = cw.Write(asciicast.Event{Time: t, Code: "o", Data: rec.Data})
		case !terminal && (rec.Type == "o" || rec.Type == "i" || rec.Type == "e"):
			if rec.Type == "i" {
				err = cw.Write(asciicast.Event{Time: t, Code: "i", Data: rec.Data})
			}
			if err == nil {
				err = cw.Write(asciicast.Event{Time: t, Code: "o", Data: asciicast.Plain(rec.Type, rec.Data)})
			}
		}
		if err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=pamd-%s.cast", sess.ID))
	w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
	w.Write(buf.Bytes())
	return nil
}

// termSize is a recorded terminal width or height as players take it: one
// the client did not report (0, or less) is unknown (the header's: 80x24
// unless the pty said), one past the bounds is clamped.
func termSize(recorded, unknown int) int {
	if recorded <= 0 {
		return unknown
	}
	return asciicast.ClampSize(recorded)
}

func describeStart(r *tunnel.Record) string {
	if r.Type == "exec" {
		cmd := r.Command
		if len(cmd) > 80 {
			cmd = cmd[:80] + "…"
		}
		return "exec " + cmd
	}
	return r.Type
}
