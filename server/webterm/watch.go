package webterm

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

// watchPoll is how often a watcher's terminal looks for new records. The
// gateway uploads a session's records within its batch delay (200 ms by
// default), so a watcher is well under a second behind.
const watchPoll = 250 * time.Millisecond

// Watch upgrades r to a read-only WebSocket that follows a live session's
// terminal from its records as the gateway uploads them: what the
// terminal showed so far, then each new output as it is stored, and
// {"ended":REASON} once the session ended and its last records came. It
// follows the session's first terminal (a channel with a pty) and, when
// that one exits, the next. The browser's messages are not read except to
// see it close: a watcher cannot type. The caller has checked that the
// watcher may read the session, audited it and told its gateway.
func (t *Terminal) Watch(w http.ResponseWriter, r *http.Request, sess *store.Session) error {
	if err := t.CheckOrigin(r); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: t.origins})
	if err != nil {
		return nil // Accept has answered
	}
	p := newPeer(ws)
	// CloseRead reads (and drops) what the browser sends; its context
	// ends when the browser goes.
	ctx := ws.CloseRead(r.Context())
	stop := make(chan struct{})
	defer close(stop)
	go keepAlive(stop, p)
	p.finish(t.follow(ctx, p, sess.ID), nil)
	return nil
}

// follow sends the session's terminal to p until the session ended (the
// control to finish with) or ctx ends (the browser or the server went:
// none).
func (t *Terminal) follow(ctx context.Context, p *peer, sessionID string) control {
	var (
		cursor    uint64
		following *tunnel.Record // the pty record of the channel shown
		done      bool
	)
	out := &toBrowser{p: p}
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		var (
			raws []json.RawMessage
			sess *store.Session
		)
		err := t.cfg.Store.View(func(tx *store.Tx) (err error) {
			// The session first: records stored before it ended are all
			// read in this same view.
			if sess, err = tx.Session(sessionID); err != nil {
				return err
			}
			raws, cursor, err = tx.RecordingsAfter(sessionID, cursor)
			return err
		})
		if err != nil {
			return control{Closed: "cannot read the session's records"}
		}
		for _, raw := range raws {
			var rec tunnel.Record
			if json.Unmarshal(raw, &rec) != nil {
				continue
			}
			switch {
			case following == nil && rec.Type == "pty":
				following = &rec
				err = p.control(ctx, control{Resize: termSize(&rec)})
			case following == nil || rec.ConnectionID != following.ConnectionID || rec.Channel != following.Channel:
			case rec.Type == "o" || rec.Type == "e":
				_, err = out.Write([]byte(rec.Data))
			case rec.Type == "r":
				err = p.control(ctx, control{Resize: termSize(&rec)})
			case rec.Type == "exit":
				following = nil // the next terminal of the session, if one opens
			}
			if err != nil {
				return control{}
			}
		}
		if done {
			return control{Ended: endReason(sess)}
		}
		// One more read after the end: the gateway uploads the last
		// records just after the session ends.
		done = !sess.EndedAt.IsZero() || !time.Now().Before(sess.ExpiresAt)
		select {
		case <-ctx.Done():
			return control{}
		case <-tick.C:
			if done {
				time.Sleep(time.Second)
			}
		}
	}
}

func endReason(sess *store.Session) string {
	if sess.EndReason != "" {
		return sess.EndReason
	}
	return "expired"
}

// termSize is a recorded terminal's size for the browser: a side the
// client did not report is 80 or 24, the others clamped as the replay does.
func termSize(r *tunnel.Record) *Size {
	s := Size{Cols: 80, Rows: 24}
	if r.Width > 0 {
		s.Cols = asciicast.ClampSize(r.Width)
	}
	if r.Height > 0 {
		s.Rows = asciicast.ClampSize(r.Height)
	}
	return &s
}
