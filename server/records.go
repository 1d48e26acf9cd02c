package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// serveRecords stores what a gateway recorded, acknowledging each batch
// once it is in the store, and keeps the backlog the gateway reports. A
// record is kept only if this gateway served its connection (see servedBy).
// A batch it cannot read or store is refused, logged and audited; the
// gateway sends it again later.
func (h *hub) serveRecords(gateway string, st *yamux.Stream) {
	defer st.Close()
	tunnel.OK().WriteTo(st)
	actor := "gateway:" + gateway
	refuse := func(reason string) {
		h.s.auditEvent(actor, "gateway.records_rejected", gateway, "failure", "", reason)
		(&tunnel.Message{Type: tunnel.MsgRefused, Reason: reason}).WriteTo(st)
	}
	served := map[[2]string]bool{} // by session and connection
	for {
		m, err := tunnel.ReadMessage(st)
		if err != nil {
			return
		}
		switch m.Type {
		case tunnel.MsgBacklog:
			var b tunnel.Backlog
			if json.Unmarshal(m.Detail, &b) == nil && b.Records >= 0 && b.Bytes >= 0 {
				h.setBacklog(gateway, b)
			}
			continue
		case tunnel.MsgRecords:
		default:
			continue
		}
		var batch []json.RawMessage
		if err := json.Unmarshal(m.Detail, &batch); err != nil {
			h.s.log.Warn("malformed record batch refused", "gateway", gateway, "bytes", len(m.Detail), "err", err)
			refuse(fmt.Sprintf("malformed record batch of %d bytes", len(m.Detail)))
			return
		}
		var maxSeq uint64
		malformed := 0
		err = h.s.st.Update(func(tx *store.Tx) error {
			malformed = 0
			for _, raw := range batch {
				var r tunnel.Record
				if json.Unmarshal(raw, &r) != nil {
					malformed++
					continue
				}
				maxSeq = max(maxSeq, r.Seq)
				key := [2]string{r.SessionID, r.ConnectionID}
				mine, known := served[key]
				if !known {
					mine = servedBy(tx, gateway, r.SessionID, r.ConnectionID)
					served[key] = mine
					if !mine {
						h.s.log.Warn("records for a connection this gateway did not serve; dropped", "gateway", gateway, "session", r.SessionID, "connection", r.ConnectionID)
					}
				}
				if !mine {
					continue
				}
				if err := tx.PutRecording(r.SessionID, r.Seq, raw); err != nil {
					return err
				}
				if r.Type == "dropped" {
					// The gateway could not upload a record of this session.
					if err := appendAudit(tx, actor, "session.record_dropped", r.SessionID, "failure", "", shorten(r.Data, 200)); err != nil {
						return err
					}
				}
			}
			if malformed > 0 {
				return appendAudit(tx, actor, "gateway.records_rejected", gateway, "failure", "", fmt.Sprintf("%d malformed records of a batch of %d dropped", malformed, len(batch)))
			}
			return nil
		})
		if err != nil {
			h.s.log.Error("store records", "gateway", gateway, "records", len(batch), "err", err)
			refuse(fmt.Sprintf("storing %d records failed: %v", len(batch), err))
			return // not acknowledged: the gateway sends them again
		}
		if malformed > 0 {
			h.s.log.Warn("malformed records dropped", "gateway", gateway, "records", malformed)
		}
		detail, _ := json.Marshal(map[string]uint64{"seq": maxSeq})
		if _, err := (&tunnel.Message{Type: tunnel.MsgAck, Detail: detail}).WriteTo(st); err != nil {
			return
		}
	}
}

// shorten cuts s to at most n bytes, on a character boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// servedBy says whether gateway served the connection, as its record says
// since it was opened, so records of a resource that has since moved to
// another gateway are still kept. A connection not recorded yet (its records
// can race its record) or recorded before connections named their gateway
// goes by the gateway its session's resource has now.
func servedBy(tx *store.Tx, gateway, sessionID, connectionID string) bool {
	sess, err := tx.Session(sessionID)
	if err != nil {
		return false
	}
	if connectionID != "" {
		conns, err := tx.Connections(sessionID)
		if err != nil {
			return false
		}
		for _, c := range conns {
			if c.ID == connectionID && c.Gateway != "" {
				return c.Gateway == gateway
			}
		}
	}
	res, err := tx.Resource(sess.ResourceID)
	return err == nil && res.Gateway == gateway
}

// sessionRecords returns a session's records if the caller may see the session.
func (s *Server) sessionRecords(r *http.Request) (*store.Session, []tunnel.Record, error) {
	c := callerOf(r)
	var sess *store.Session
	var raws []json.RawMessage
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		sess, err = tx.Session(r.PathValue("id"))
		if err != nil || (!c.canRead() && sess.UserID != c.user.ID) {
			return httpError(http.StatusNotFound, "no session %q", r.PathValue("id"))
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
		if json.Unmarshal(raw, &rec) == nil {
			out = append(out, rec)
		}
	}
	return sess, out, nil
}

// handleSessionRecords answers a session's records, each with the summary
// its resource's kind renders, so that every client shows them alike.
func (s *Server) handleSessionRecords(w http.ResponseWriter, r *http.Request) error {
	sess, recs, err := s.sessionRecords(r)
	if err != nil {
		return err
	}
	var k kind.Kind
	s.st.View(func(tx *store.Tx) error {
		if res, err := tx.Resource(sess.ResourceID); err == nil {
			k, _ = s.kinds.of(res.Type)
		}
		return nil
	})
	out := make([]api.Record, len(recs))
	for i := range recs {
		out[i] = api.Record{Record: recs[i], Summary: s.kinds.summary(k, &recs[i])}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleAsciicast renders one channel of a session as asciicast v2.
// Without ?connection=&channel= it takes the first channel that had a pty,
// or else the first shell or command. A channel without a terminal is
// rendered as asciicast.Plain says (LF as CRLF, input echoed, stderr red);
// sizes are clamped, whatever the records say.
func (s *Server) handleAsciicast(w http.ResponseWriter, r *http.Request) error {
	sess, recs, err := s.sessionRecords(r)
	if err != nil {
		return err
	}
	conn, chanStr := r.URL.Query().Get("connection"), r.URL.Query().Get("channel")
	channel := -1
	if chanStr != "" {
		if channel, err = strconv.Atoi(chanStr); err != nil {
			return httpError(http.StatusBadRequest, "channel %q: want a number", chanStr)
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
		return httpError(http.StatusNotFound, "session %s has no recorded terminal, shell or command", sess.ID)
	}
	terminal := first.Type == "pty"
	h := asciicast.Header{
		Width: 80, Height: 24, Timestamp: first.Time.Unix(),
		Title: fmt.Sprintf("pamd session %s: %s on %s/%s", sess.ID, sess.UserName, sess.ResourceName, sess.AccountName),
	}
	if terminal {
		h.Width, h.Height = asciicast.ClampSize(first.Width), asciicast.ClampSize(first.Height)
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
			err = cw.Write(asciicast.Event{Time: t, Code: "r", Data: fmt.Sprintf("%dx%d", asciicast.ClampSize(rec.Width), asciicast.ClampSize(rec.Height))})
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
