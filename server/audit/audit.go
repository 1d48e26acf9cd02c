package audit

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// Append adds an event inside tx, so it commits with the change it records.
func Append(tx *store.Tx, actor, action, target, outcome, source, detail string) error {
	return tx.AppendAudit(&store.AuditEvent{
		Time: time.Now().UTC(), Actor: actor, Action: action, Target: target,
		Outcome: outcome, Source: source, Detail: detail,
	})
}

// Trail appends events that stand alone (a refusal, a failure) in their
// own transaction; a failed append is logged, never returned.
type Trail struct {
	St  *store.Store
	Log *slog.Logger
}

// Event appends one event.
func (t Trail) Event(actor, action, target, outcome, source, detail string) {
	err := t.St.Update(func(tx *store.Tx) error {
		return Append(tx, actor, action, target, outcome, source, detail)
	})
	if err != nil {
		t.Log.Error("audit append failed", "action", action, "err", err)
	}
}

// Host is an event's source: the host of a remote address.
func Host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Name makes a name from a request fit for the log: a valid name as it is,
// anything else as at most 64 bytes of it, quoted, so no control character
// and no megabyte gets through.
func Name(name string) string {
	if api.ValidName("", name) == nil {
		return name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return "invalid:" + strconv.QuoteToASCII(name)
}
