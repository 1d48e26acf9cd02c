package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// A relay holds a buffer only while data flows (a burst), so that
// thousands of mostly idle connections cost little: between bursts it
// waits with no buffer (on a yamux stream) or a small one of its own. A
// burst starts in a burstSize buffer and moves to a bulkSize one once a
// read fills that: each write becomes one yamux frame, and the frame's
// overhead (a handoff to yamux's writer, a TLS flush, the peer's wakeup)
// is what large transfers pay per frame.
const (
	// waitSize is what a relay holds while it waits on a source that is
	// not a yamux stream: an interactive exchange fits in it whole.
	waitSize = 2 << 10
	// burstSize is what a burst starts in: an interactive message fits,
	// and 1,000 busy connections (16 KiB echoes) each hold one at most.
	burstSize = 32 << 10
	// bulkSize carries bulk transfers: through pamd's three processes,
	// 32 KiB frames cost 15-20% more CPU per byte than 256 KiB ones (the
	// e2e bench's CPU figures, three runs each), and 256 KiB ones no more
	// than the 256 KiB buffer each relay used to hold for its life.
	bulkSize = 256 << 10
)

var (
	burstPool = sync.Pool{New: func() any { b := make([]byte, burstSize); return &b }}
	bulkPool  = sync.Pool{New: func() any { b := make([]byte, bulkSize); return &b }}
)

// Counter counts bytes as they pass; safe to read while the relay runs.
type Counter struct{ n atomic.Int64 }

func (c *Counter) Load() int64 { return c.n.Load() }

// Join relays between a and b until both directions have ended, one of them
// fails, or ctx is done; then it closes both. The end of one direction is
// passed on as a half-close (CloseWrite, or yamux's FIN), so protocols that
// send a request and then wait for the whole answer work. up counts a→b,
// down counts b→a; either may be nil.
func Join(ctx context.Context, a, b io.ReadWriteCloser, up, down *Counter) error {
	return JoinAnswered(ctx, a, b, up, down, nil)
}

// JoinAnswered is Join for a b that answers before its bytes: a's bytes
// go on to b at once, while b→a first waits for answer (which reads b's
// answer and tells a, say) and ends the relay if it fails. A nil answer
// is Join.
func JoinAnswered(ctx context.Context, a, b io.ReadWriteCloser, up, down *Counter, answer func() error) error {
	if up == nil {
		up = new(Counter)
	}
	if down == nil {
		down = new(Counter)
	}
	r := &relay{a: a, b: b}
	stop := context.AfterFunc(ctx, r.cut)
	defer stop()
	// One direction runs here: a connection costs one goroutine less.
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		r.fail(pipe(b, a, up))
	}()
	if answer == nil {
		r.fail(pipe(a, b, down))
	} else if err := answer(); err != nil {
		r.fail(err)
	} else {
		r.fail(pipe(a, b, down))
	}
	<-upDone
	a.Close()
	b.Close()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return r.first
}

// relay is one Join's state: its two ends and the first failure.
type relay struct {
	a, b  io.ReadWriteCloser
	once  sync.Once
	mu    sync.Mutex
	first error
}

// fail records a direction's error; a failed direction leaves nothing to
// wait for, so it cuts the other.
func (r *relay) fail(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	if r.first == nil {
		r.first = err
	}
	r.mu.Unlock()
	r.cut()
}

// cut closes both ends and wakes their blocked reads.
func (r *relay) cut() {
	r.once.Do(func() {
		// A yamux Close only half-closes and does not wake a blocked Read;
		// a deadline in the past does, on every transport that has one.
		for _, c := range []io.ReadWriteCloser{r.a, r.b} {
			if d, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok {
				d.SetReadDeadline(time.Unix(1, 0))
			}
			c.Close()
		}
	})
}

// pipe copies src to dst, then half-closes dst. It returns nil for a clean
// end of src.
func pipe(dst io.Writer, src io.Reader, n *Counter) error {
	err := copyBursts(dst, src, n)
	if err == io.EOF {
		err = nil
		closeWrite(dst)
	}
	if isClosed(err) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, yamux.ErrTimeout) {
		err = nil // the relay was cut on purpose
	}
	return err
}

// Copy is io.Copy for relays that live long and are mostly idle: while it
// waits for src it holds a small buffer (or, on a yamux stream, none), and
// a pooled one only while data flows. It returns the bytes written and nil
// at the end of src.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	var n Counter
	err := copyBursts(dst, src, &n)
	if err == io.EOF {
		err = nil
	}
	return n.Load(), err
}

// copyBursts copies src to dst until src ends (io.EOF) or either fails.
// It waits for each burst without a pooled buffer, takes one while reads
// fill it, and gives it back after the first short read: the next read
// would most likely block.
func copyBursts(dst io.Writer, src io.Reader, n *Counter) error {
	wait := newWaiter(src)
	for {
		more, err := wait(dst, n)
		if err != nil {
			return err
		}
		if !more {
			continue
		}
		if err := copyBurst(dst, src, n); err != nil {
			return err
		}
	}
}

// copyBurst copies through a pooled buffer while reads fill it, moving to
// a bulk buffer when one fills the burst buffer.
func copyBurst(dst io.Writer, src io.Reader, n *Counter) error {
	pool := &burstPool
	bp := pool.Get().(*[]byte)
	defer func() { pool.Put(bp) }()
	for {
		buf := *bp
		k, err := src.Read(buf)
		if werr := write(dst, buf[:k], n); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
		if k < len(buf) {
			return nil
		}
		if pool == &burstPool {
			pool.Put(bp)
			pool = &bulkPool
			bp = pool.Get().(*[]byte)
		}
	}
}

// A waiter waits for src's next burst. It reports whether one began that
// the pooled buffer should carry on; what it read meanwhile it has written
// to dst.
type waiter func(dst io.Writer, n *Counter) (more bool, err error)

func newWaiter(src io.Reader) waiter {
	if st, ok := src.(*yamux.Stream); ok {
		return streamWaiter(st)
	}
	small := make([]byte, waitSize)
	return func(dst io.Writer, n *Counter) (bool, error) {
		k, err := src.Read(small)
		if werr := write(dst, small[:k], n); werr != nil {
			return false, werr
		}
		return err == nil && k == len(small), err
	}
}

// shrinkAfter is how long a yamux stream waits before it drops its
// drained receive buffer. yamux keeps that buffer at twice the largest
// frame it held, for the stream's life; dropping it at once after every
// burst would make each frame allocate it anew and grow it once more.
const shrinkAfter = 20 * time.Millisecond

// streamWaiter waits on a yamux stream with an empty read, which blocks
// until data or the end arrives and takes nothing; a stream idle for
// shrinkAfter drops its receive buffer.
func streamWaiter(st *yamux.Stream) waiter {
	idle := time.AfterFunc(time.Hour, st.Shrink)
	idle.Stop()
	return func(io.Writer, *Counter) (bool, error) {
		idle.Reset(shrinkAfter)
		_, err := st.Read(nil)
		idle.Stop()
		return err == nil, err
	}
}

func write(dst io.Writer, p []byte, n *Counter) error {
	if len(p) == 0 {
		return nil
	}
	k, err := dst.Write(p)
	n.n.Add(int64(k))
	return err
}

func closeWrite(w io.Writer) {
	switch c := w.(type) {
	case *yamux.Stream:
		c.Close() // yamux's Close sends FIN and still reads: a half-close
	case interface{ CloseWrite() error }:
		c.CloseWrite()
	}
}

// isClosed reports errors that only say the other side or we went away,
// which are how relays normally end.
func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, yamux.ErrStreamClosed) || errors.Is(err, yamux.ErrSessionShutdown) ||
		errors.Is(err, yamux.ErrConnectionReset)
}
