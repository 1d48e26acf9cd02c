package relay

import (
	"log/slog"
	"sync"

	"github.com/pamd/pamd/store"
)

// connLog writes connection records off the data path. put queues a
// record and returns at once; one goroutine commits everything queued in
// one transaction, so no connection waits for the disk and a burst of
// connections costs one commit. A connection's start record is queued
// before its first byte is relayed and committed a commit's time later, so
// a crash mid-connection still leaves it; its end record follows in order.
type connLog struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	pending []store.Connection
	running bool
	closing bool
	wake    chan struct{}
	done    chan struct{}
}

// maxPending bounds what waits for a commit (a record is a few hundred
// bytes); past it, put commits itself, so a disk that cannot keep up slows
// new connections down instead of growing memory.
const maxPending = 65536

func newConnLog(st *store.Store, log *slog.Logger) *connLog {
	return &connLog{st: st, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
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
	running := l.running
	l.closing = true
	l.mu.Unlock()
	if !running {
		return
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
	for {
		<-l.wake
		l.mu.Lock()
		batch, closing := l.pending, l.closing
		l.pending = nil
		l.mu.Unlock()
		l.commit(batch)
		if closing {
			return
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
