package hub

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/store"
)

// serveRecords stores what a gateway recorded, acknowledging each batch
// once it is in the store, and keeps the backlog the gateway reports. A
// record is kept only if this gateway served its connection (see servedBy).
// A batch it cannot read or store is refused, logged and audited; the
// gateway sends it again later.
func (h *Hub) serveRecords(gateway string, st *yamux.Stream) {
	defer st.Close()
	tunnel.OK().WriteTo(st)
	actor := "gateway:" + gateway
	refuse := func(reason string) {
		h.cfg.Metrics.RecordBatchRefused()
		h.trail.Event(actor, "gateway.records_rejected", gateway, "failure", "", reason)
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
			h.log.Warn("malformed record batch refused", "gateway", gateway, "bytes", len(m.Detail), "err", err)
			refuse(fmt.Sprintf("malformed record batch of %d bytes", len(m.Detail)))
			return
		}
		var maxSeq uint64
		malformed := 0
		err = h.st.Update(func(tx *store.Tx) error {
			malformed = 0
			numberedBy := enrollment(tx, gateway)
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
					mine = h.servedBy(tx, gateway, r.SessionID, r.ConnectionID)
					served[key] = mine
					if !mine {
						h.log.Warn("records for a connection this gateway did not serve; dropped", "gateway", gateway, "session", r.SessionID, "connection", r.ConnectionID)
					}
				}
				if !mine {
					continue
				}
				stored, err := tx.AppendRecording(r.SessionID, numberedBy, r.Seq, raw)
				if err != nil {
					return err
				}
				if stored && r.Type == "dropped" {
					// The gateway could not upload a record of this session.
					if err := audit.Append(tx, actor, "session.record_dropped", r.SessionID, "failure", "", shorten(r.Data, 200)); err != nil {
						return err
					}
				}
			}
			if malformed > 0 {
				return audit.Append(tx, actor, "gateway.records_rejected", gateway, "failure", "", fmt.Sprintf("%d malformed records of a batch of %d dropped", malformed, len(batch)))
			}
			return nil
		})
		if err != nil {
			h.log.Error("store records", "gateway", gateway, "records", len(batch), "err", err)
			refuse(fmt.Sprintf("storing %d records failed: %v", len(batch), err))
			return // not acknowledged: the gateway sends them again
		}
		if malformed > 0 {
			h.log.Warn("malformed records dropped", "gateway", gateway, "records", malformed)
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

// enrollment names the gateway's current enrollment, which numbers its
// records: a gateway enrolled again (pamd gateways token --replace, a new
// data dir) starts its numbers over, and its records are new ones.
func enrollment(tx *store.Tx, gateway string) string {
	g, err := tx.GatewayByName(gateway)
	if err != nil {
		return gateway // removed while connected: its records are refused anyway
	}
	return gateway + "@" + g.EnrolledAt.UTC().Format(time.RFC3339Nano)
}

// servedBy says whether gateway served the connection, as its record says
// since it was opened, so records of a resource that has since moved to
// another gateway are still kept, and of a group's resource only the
// gateway that served the connection has its records kept.
//
// The relay queues a connection's record (naming its gateway) before it
// writes the descriptor, but commits it off the data path, so a record
// can reach the hub first. The hub itself remembered the gateway when it
// opened the dial stream (OpenFor, h.opened), before the descriptor left:
// that answers until the store does, with no race. A connection neither
// knows goes by what its session's resource has now only for a resource
// of one gateway (connections recorded before they named their gateway);
// for a group's resource it is refused, since any of the group could
// claim it.
func (h *Hub) servedBy(tx *store.Tx, gateway, sessionID, connectionID string) bool {
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
		if served, ok := h.opened.get(connectionID); ok {
			return served == gateway
		}
	}
	res, err := tx.Resource(sess.ResourceID)
	if err != nil {
		return false
	}
	return res.GatewayGroup == "" && res.Gateway == gateway
}
