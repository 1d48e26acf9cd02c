package streams

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
)

// AcceptWithin accepts the session's first stream, closing the session if
// none comes within d.
func AcceptWithin(sess *yamux.Session, d time.Duration) (*yamux.Stream, error) {
	t := time.AfterFunc(d, func() { sess.Close() })
	st, err := sess.AcceptStream()
	if !t.Stop() {
		if err == nil {
			st.Close()
		}
		return nil, fmt.Errorf("no stream within %s", d)
	}
	return st, err
}

// CutOnDone makes st's blocked and later reads and writes fail once ctx
// ends; the returned func stops that.
func CutOnDone(ctx context.Context, st *yamux.Stream) (stop func() bool) {
	return context.AfterFunc(ctx, func() { st.SetDeadline(time.Unix(1, 0)) })
}

// TakeSlot takes one of slots for st, or refuses st when none is free.
func TakeSlot(slots chan struct{}, st *yamux.Stream) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	// Refused before its header is read; the write deadline keeps a peer
	// that does not read from stalling the accept loop for long.
	st.SetWriteDeadline(time.Now().Add(time.Second))
	tunnel.Refuse("pamd: too many streams at once on this connection (at most %d)", cap(slots)).WriteTo(st)
	st.Close()
	return false
}

// AcceptEach accepts sess's streams until the session closes, refuses
// those beyond slots' capacity open at once (see TakeSlot), and serves
// each in a goroutine that open counts and that gives its slot back.
func AcceptEach(sess *yamux.Session, slots chan struct{}, open *sync.WaitGroup, serve func(*yamux.Stream)) {
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		if !TakeSlot(slots, st) {
			continue
		}
		open.Add(1)
		go func() {
			defer open.Done()
			defer func() { <-slots }()
			serve(st)
		}()
	}
}
