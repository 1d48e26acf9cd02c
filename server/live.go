package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pamd/pamd/store"
)

// liveSessions tracks the sessions that may carry traffic: each has a
// context that every relay of the session runs under, cancelled when the
// session ends, and a timer for its expiry.
type liveSessions struct {
	s  *Server
	mu sync.Mutex
	m  map[string]*liveSession
	// expiries counts the expiry timers ending a session now; once
	// stopped (under mu) none starts, and run waits for those that did.
	expiries sync.WaitGroup
	stopped  bool
	// ctx is what expiries' notices run under, cancelled by run.
	ctx    context.Context
	cancel context.CancelFunc
}

type liveSession struct {
	id        string
	userID    string
	accountID string
	ctx       context.Context
	cancel    context.CancelCauseFunc
	timer     *time.Timer
}

// errSessionEnded is the cause of a live session's context; its text is the
// end reason.
type errSessionEnded struct{ reason string }

func (e *errSessionEnded) Error() string { return "pamd: session ended: " + e.reason }

func newLiveSessions(s *Server) *liveSessions {
	ctx, cancel := context.WithCancel(context.Background())
	return &liveSessions{s: s, m: map[string]*liveSession{}, ctx: ctx, cancel: cancel}
}

// restore loads the sessions that were active when the server stopped;
// those that expired meanwhile are closed as expired.
func (l *liveSessions) restore() error {
	var active []*store.Session
	err := l.s.st.View(func(tx *store.Tx) error {
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
			l.add(s)
		} else {
			l.end(l.ctx, s.ID, "expired", "system")
		}
	}
	return nil
}

// run keeps the expiry timers until ctx ends, then stops them and waits
// for the expiries already running.
func (l *liveSessions) run(ctx context.Context) {
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
func (l *liveSessions) expire(id string) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return // still active in the store; restore ends it at the next start
	}
	l.expiries.Add(1)
	l.mu.Unlock()
	defer l.expiries.Done()
	l.end(l.ctx, id, "expired", "system")
}

func (l *liveSessions) add(s *store.Session) *liveSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls, ok := l.m[s.ID]; ok {
		return ls
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	ls := &liveSession{id: s.ID, userID: s.UserID, accountID: s.AccountID, ctx: ctx, cancel: cancel}
	ls.timer = time.AfterFunc(time.Until(s.ExpiresAt), func() { l.expire(s.ID) })
	l.m[s.ID] = ls
	return ls
}

func (l *liveSessions) get(id string) *liveSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

// end closes a session: it is recorded as ended with the reason, and every
// relay and control stream of it is cut. Ending an ended session is a no-op.
// The gateway's notice stops waiting when ctx ends.
func (l *liveSessions) end(ctx context.Context, id, reason, actor string) error {
	var ended bool
	var gateway string
	err := l.s.st.Update(func(tx *store.Tx) error {
		s, err := tx.Session(id)
		if err != nil {
			return err
		}
		if !s.EndedAt.IsZero() {
			return nil
		}
		if res, err := tx.Resource(s.ResourceID); err == nil {
			gateway = res.Gateway
		}
		s.EndedAt, s.EndReason, ended = time.Now().UTC(), reason, true
		if err := tx.PutSession(s); err != nil {
			return err
		}
		return appendAudit(tx, actor, "session.end", s.ID, "success", "", s.ResourceName+"/"+s.AccountName+" for "+s.UserName+": "+reason)
	})
	l.mu.Lock()
	ls := l.m[id]
	delete(l.m, id)
	l.mu.Unlock()
	if ls != nil && gateway != "" {
		// The gateway tells the session's clients why, in their protocol,
		// before the relays are cut; it has half a second.
		l.s.hub.notice(ctx, gateway, id, reason, 500*time.Millisecond)
	}
	if ls != nil {
		ls.timer.Stop()
		ls.cancel(&errSessionEnded{reason: reason})
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		l.s.log.Error("end session", "session", id, "err", err)
		return err
	}
	if ended {
		l.s.log.Info("session ended", "session", id, "reason", reason)
	}
	return err
}

// endUserSessions ends every live session of a user and says how many.
func (l *liveSessions) endUserSessions(ctx context.Context, userID, reason string) int {
	l.mu.Lock()
	var ids []string
	for id, ls := range l.m {
		if ls.userID == userID {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.end(ctx, id, reason, "system")
	}
	return len(ids)
}

// onAccount counts the live sessions on an account.
func (l *liveSessions) onAccount(accountID string) int {
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

// reasonOf is the end reason behind a cancelled session context.
func reasonOf(ctx context.Context) string {
	var e *errSessionEnded
	if errors.As(context.Cause(ctx), &e) {
		return e.reason
	}
	return "server shutting down"
}
