package relay

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pamd/pamd/store"
)

// connLog writes connection records off the data path. put queues a
// record and returns at once; one goroutine commits everything queued in
// one transaction, so no connection waits for the disk and a burst of
// connections costs one commit. A connection's start record is queued
// before its first byte is relayed and committed within commitEvery and a
// commit's time, so a crash mid-connection still leaves it; its end record
// follows in order.
type connLog struct {
	st  *store.Store
	log *slog.Logger

	mu       sync.Mutex
	pending  []store.Connection
	running  bool
	closing  bool
	wake     chan struct{}
	stopping chan struct{} // closed by stop: the writer no longer spaces commits
	done     chan struct{}
	commits  atomic.Int64 // transactions written, for tests
}

// commitEvery spaces the writer's commits. Each one ends in an fsync, and
// clients that open connection after connection (drivers' pools, scripts)
// made two a connection, a third of the server's CPU for them in a profile
// of sequential new connections; spaced, they cost at most 50 a second
// however many connections come.
const commitEvery = 20 * time.Millisecond

// maxPending bounds what waits for a commit (a record is a few hundred
// bytes); past it, put commits itself, so a disk that cannot keep up slows
// new connections down instead of growing memory.
const maxPending = 65536

func newConnLog(st *store.Store, log *slog.Logger) *connLog {
	return &connLog{st: st, log: log, wake: make(chan struct{}, 1), stopping: make(chan struct{}), done: make(chan struct{})}
}

// start runs the writer until stop.
func (l *connLog) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running || l.closing {
		return
	}
	l.running = true
	go l.run()
}

// stop commits what is queued and ends the writer; records put after it
// are committed by put itself.
func (l *connLog) stop() {
	l.mu.Lock()
	running, closing := l.running, l.closing
	l.closing = true
	l.mu.Unlock()
	if !running {
		return
	}
	if !closing {
		close(l.stopping)
	}
	l.poke()
	<-l.done
}

func (l *connLog) put(c store.Connection) {
	l.mu.Lock()
	if !l.running || l.closing || len(l.pending) >= maxPending {
		l.mu.Unlock()
		l.commit([]store.Connection{c})
		return
	}
	l.pending = append(l.pending, c)
	l.mu.Unlock()
	l.poke()
}

func (l *connLog) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *connLog) run() {
	defer close(l.done)
	spacing := time.NewTimer(0)
	defer spacing.Stop()
	for {
		<-l.wake
		began := time.Now()
		l.mu.Lock()
		batch, closing := l.pending, l.closing
		l.pending = nil
		l.mu.Unlock()
		l.commit(batch)
		if closing {
			return
		}
		spacing.Reset(time.Until(began.Add(commitEvery)))
		select {
		case <-spacing.C:
		case <-l.stopping:
		}
	}
}

// commit writes records in one transaction, in the order they were put (a
// start record before its end record). A failed commit is logged: the
// connection it describes has been served already.
func (l *connLog) commit(batch []store.Connection) {
	if len(batch) == 0 {
		return
	}
	l.commits.Add(1)
	err := l.st.Update(func(tx *store.Tx) error {
		for i := range batch {
			if err := tx.PutConnection(&batch[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		l.log.Error("record connections", "records", len(batch), "err", err)
	}
}
