package sessions

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/store"
)

// Notifier tells the gateways serving a resource (its gateway, or its
// group's) that a session ended, waiting at most d (and until ctx ends)
// for them to acknowledge: the gateway's hub.
type Notifier interface {
	Notice(ctx context.Context, res *store.Resource, sessionID, reason string, d time.Duration)
}

// Live tracks the sessions that may carry traffic: each has a context that
// every relay of the session runs under, cancelled when the session ends,
// and a timer for its expiry.
type Live struct {
	st       *store.Store
	log      *slog.Logger
	gateways Notifier
	mu       sync.Mutex
	m        map[string]*Active
	// expiries counts the expiry timers ending a session now; once
	// stopped (under mu) none starts, and run waits for those that did.
	expiries sync.WaitGroup
	stopped  bool
	// ctx is what expiries' notices run under, cancelled by run.
	ctx    context.Context
	cancel context.CancelFunc
}

// Active is one live session.
type Active struct {
	id        string
	userID    string
	accountID string
	ctx       context.Context
	cancel    context.CancelCauseFunc
	timer     *time.Timer
	// sess is the session as it was made live. A stored session changes
	// only when it ends, and then it leaves the live set: so while it is
	// live, this copy answers what a new connection asks of it without
	// a store read.
	sess store.Session
}

// Context ends when the session does; ReasonOf says why.
func (a *Active) Context() context.Context { return a.ctx }

// Session is a copy of the session as it was made live.
func (a *Active) Session() *store.Session {
	s := a.sess
	return &s
}

// errSessionEnded is the cause of a live session's context; its text is the
// end reason.
type errSessionEnded struct{ reason string }

func (e *errSessionEnded) Error() string { return "pamd: session ended: " + e.reason }

// New is the live sessions of st, none yet (see Restore); gateways hear
// of every end.
func New(st *store.Store, log *slog.Logger, gateways Notifier) *Live {
	ctx, cancel := context.WithCancel(context.Background())
	return &Live{st: st, log: log, gateways: gateways, m: map[string]*Active{}, ctx: ctx, cancel: cancel}
}

// Restore loads the sessions that were active when the server stopped;
// those that expired meanwhile are closed as expired.
func (l *Live) Restore() error {
	var active []*store.Session
	err := l.st.View(func(tx *store.Tx) error {
		all, err := tx.Sessions()
		for _, s := range all {
			if s.EndedAt.IsZero() {
				active = append(active, s)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, s := range active {
		if now.Before(s.ExpiresAt) {
			l.Add(s)
		} else {
			l.End(l.ctx, s.ID, "expired", "system")
		}
	}
	return nil
}

// Run keeps the expiry timers until ctx ends, then stops them and waits
// for the expiries already running.
func (l *Live) Run(ctx context.Context) {
	<-ctx.Done()
	l.mu.Lock()
	l.stopped = true
	for _, ls := range l.m {
		ls.timer.Stop() // the store keeps them active; restore picks them up
	}
	l.mu.Unlock()
	l.cancel()
	l.expiries.Wait()
}

// expire ends a session at its expiry, unless run has stopped.
func (l *Live) expire(id string) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return // still active in the store; restore ends it at the next start
	}
	l.expiries.Add(1)
	l.mu.Unlock()
	defer l.expiries.Done()
	l.End(l.ctx, id, "expired", "system")
}

// Add makes a stored session live (again: a live one is returned as it is).
func (l *Live) Add(s *store.Session) *Active {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls, ok := l.m[s.ID]; ok {
		return ls
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ls := &Active{id: s.ID, userID: s.UserID, accountID: s.AccountID, ctx: ctx, cancel: cancel, sess: *s}
	ls.timer = time.AfterFunc(time.Until(s.ExpiresAt), func() { l.expire(s.ID) })
	l.m[s.ID] = ls
	return ls
}

// Get is the live session of that id, or nil.
func (l *Live) Get(id string) *Active {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

// End closes a session: it is recorded as ended with the reason, and every
// relay and control stream of it is cut. Ending an ended session is a no-op.
// The gateway's notice stops waiting when ctx ends.
func (l *Live) End(ctx context.Context, id, reason, actor string) error {
	var ended bool
	var res *store.Resource
	err := l.st.Update(func(tx *store.Tx) error {
		s, err := tx.Session(id)
		if err != nil {
			return err
		}
		if !s.EndedAt.IsZero() {
			return nil
		}
		if r, err := tx.Resource(s.ResourceID); err == nil {
			res = r
		}
		s.EndedAt, s.EndReason, ended = time.Now().UTC(), reason, true
		if err := tx.PutSession(s); err != nil {
			return err
		}
		return audit.Append(tx, actor, "session.end", s.ID, "success", "", s.ResourceName+"/"+s.AccountName+" for "+s.UserName+": "+reason)
	})
	l.mu.Lock()
	ls := l.m[id]
	delete(l.m, id)
	l.mu.Unlock()
	if ls != nil && res != nil {
		// The gateways tell the session's clients why, in their protocol,
		// before the relays are cut; they have half a second.
		l.gateways.Notice(ctx, res, id, reason, 500*time.Millisecond)
	}
	if ls != nil {
		ls.timer.Stop()
		ls.cancel(&errSessionEnded{reason: reason})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		l.log.Error("end session", "session", id, "err", err)
		return err
	}
	if ended {
		l.log.Info("session ended", "session", id, "reason", reason)
	}
	return err
}

// EndUser ends every live session of a user and says how many.
func (l *Live) EndUser(ctx context.Context, userID, reason string) int {
	l.mu.Lock()
	var ids []string
	for id, ls := range l.m {
		if ls.userID == userID {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.End(ctx, id, reason, "system")
	}
	return len(ids)
}

// Count is how many sessions are live.
func (l *Live) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// OnAccount counts the live sessions on an account.
func (l *Live) OnAccount(accountID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ls := range l.m {
		if ls.accountID == accountID {
			n++
		}
	}
	return n
}

// ReasonOf is the end reason behind a cancelled session context.
func ReasonOf(ctx context.Context) string {
	var e *errSessionEnded
	if errors.As(context.Cause(ctx), &e) {
		return e.reason
	}
	return "server shutting down"
}
