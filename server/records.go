package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

// serveRecords stores what a gateway recorded, acknowledging each batch
// once it is in the store. A record for a session that is not served by this
// gateway is dropped.
func (h *hub) serveRecords(gateway string, st *yamux.Stream) {
	defer st.Close()
	tunnel.OK().WriteTo(st)
	owner := map[string]bool{}
	for {
		m, err := tunnel.ReadMessage(st)
		if err != nil {
			return
		}
		if m.Type != tunnel.MsgRecords {
			continue
		}
		var batch []json.RawMessage
		if err := json.Unmarshal(m.Detail, &batch); err != nil {
			h.s.log.Warn("malformed record batch", "gateway", gateway, "err", err)
			return
		}
		var maxSeq uint64
		err = h.s.st.Update(func(tx *store.Tx) error {
			for _, raw := range batch {
				var r tunnel.Record
				if json.Unmarshal(raw, &r) != nil {
					continue
				}
				maxSeq = max(maxSeq, r.Seq)
				mine, known := owner[r.SessionID]
				if !known {
					if s, err := tx.Session(r.SessionID); err == nil {
						if res, err := tx.Resource(s.ResourceID); err == nil {
							mine = res.Gateway == gateway
						}
					}
					owner[r.SessionID] = mine
				}
				if !mine {
					continue
				}
				if err := tx.PutRecording(r.SessionID, r.Seq, raw); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			h.s.log.Error("store records", "gateway", gateway, "err", err)
			return // not acknowledged: the gateway sends them again
		}
		detail, _ := json.Marshal(map[string]uint64{"seq": maxSeq})
		if _, err := (&tunnel.Message{Type: tunnel.MsgAck, Detail: detail}).WriteTo(st); err != nil {
			return
		}
	}
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

func (s *Server) handleSessionRecords(w http.ResponseWriter, r *http.Request) error {
	_, recs, err := s.sessionRecords(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}

// handleAsciicast renders one terminal channel of a session as asciicast v2.
// Without ?connection=&channel= it takes the first channel that had a pty.
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
	var pty *tunnel.Record
	for i := range recs {
		if recs[i].Type == "pty" && (conn == "" || recs[i].ConnectionID == conn) && (channel < 0 || recs[i].Channel == channel) {
			pty = &recs[i]
			break
		}
	}
	if pty == nil {
		return httpError(http.StatusNotFound, "session %s has no recorded terminal", sess.ID)
	}
	var buf bytes.Buffer
	cw, err := asciicast.NewWriter(&buf, asciicast.Header{
		Width: pty.Width, Height: pty.Height, Timestamp: pty.Time.Unix(),
		Title: fmt.Sprintf("pamd session %s: %s on %s/%s", sess.ID, sess.UserName, sess.ResourceName, sess.AccountName),
		Env:   map[string]string{"TERM": pty.Term},
	})
	if err != nil {
		return err
	}
	start := pty.Time
	for _, rec := range recs {
		if rec.ConnectionID != pty.ConnectionID || rec.Channel != pty.Channel {
			continue
		}
		t := rec.Time.Sub(start).Seconds()
		switch rec.Type {
		case "o", "i":
			err = cw.Write(asciicast.Event{Time: t, Code: rec.Type, Data: rec.Data})
		case "r":
			err = cw.Write(asciicast.Event{Time: t, Code: "r", Data: fmt.Sprintf("%dx%d", rec.Width, rec.Height)})
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
