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

// bufSize is the relay's copy buffer: large enough that a bulk transfer
// fills TLS records and yamux frames instead of paying per-call overhead.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Counter counts bytes as they pass; safe to read while the relay runs.
type Counter struct{ n atomic.Int64 }

func (c *Counter) Load() int64 { return c.n.Load() }

// Join relays between a and b until both directions have ended, one of them
// fails, or ctx is done; then it closes both. The end of one direction is
// passed on as a half-close (CloseWrite, or yamux's FIN), so protocols that
// send a request and then wait for the whole answer work. up counts a→b,
// down counts b→a; either may be nil.
func Join(ctx context.Context, a, b io.ReadWriteCloser, up, down *Counter) error {
	if up == nil {
		up = new(Counter)
	}
	if down == nil {
		down = new(Counter)
	}
	errc := make(chan error, 2)
	go func() { errc <- pipe(b, a, up) }()
	go func() { errc <- pipe(a, b, down) }()

	var first error
	closeAll := func() {
		// A yamux Close only half-closes and does not wake a blocked Read;
		// a deadline in the past does, on every transport that has one.
		for _, c := range []io.ReadWriteCloser{a, b} {
			if d, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok {
				d.SetReadDeadline(time.Unix(1, 0))
			}
			c.Close()
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if err != nil && first == nil {
				first = err
				closeAll() // a failed direction leaves nothing to wait for
			}
		case <-ctx.Done():
			closeAll()
			<-errc
			if i == 0 {
				<-errc
			}
			return context.Cause(ctx)
		}
	}
	a.Close()
	b.Close()
	return first
}

// pipe copies src to dst, then half-closes dst. It returns nil for a clean
// end of src.
func pipe(dst io.Writer, src io.Reader, n *Counter) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var err error
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.n.Add(int64(nw))
			if werr != nil {
				err = werr
				break
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	if err == nil {
		closeWrite(dst)
	}
	if isClosed(err) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // the relay was cut on purpose
	}
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
