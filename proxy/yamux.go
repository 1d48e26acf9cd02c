package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// YamuxConfig is the multiplexer configuration of every pamd tunnel. Both
// ends use the same values.
func YamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = 4096                 // 1,000+ connections opening at once must not be refused
	c.MaxStreamWindowSize = 4 << 20        // bulk transfers are window-bound over TLS; buffers grow only when used
	c.KeepAliveInterval = 10 * time.Second // a dead peer is noticed within ~20 s
	c.ConnectionWriteTimeout = 30 * time.Second
	c.StreamCloseTimeout = 30 * time.Second
	c.StreamOpenTimeout = 15 * time.Second
	c.LogOutput = io.Discard
	return c
}

// YamuxClient and YamuxServer start a yamux session over conn with
// YamuxConfig. When conn is a TLS connection made over a BatchConn (DialTLS,
// or the server's listener), each yamux frame leaves in one write and reads
// are buffered: see BatchConn.
func YamuxClient(conn net.Conn) (*yamux.Session, error) {
	return yamux.Client(batched(conn), YamuxConfig())
}

func YamuxServer(conn net.Conn) (*yamux.Session, error) {
	return yamux.Server(batched(conn), YamuxConfig())
}

// YamuxServerGated is YamuxServer for a peer that proves who it is on its
// first stream (pamd connect): until the caller opens the gate, a second
// stream from the peer is a protocol error that ends the session before
// yamux allocates anything for it.
func YamuxServerGated(conn net.Conn) (*yamux.Session, *StreamGate, error) {
	g := &StreamGate{}
	sess, err := yamux.Server(&gatedConn{Conn: batched(conn), gate: g}, YamuxConfig())
	return sess, g, err
}

// ErrStreamBeforeAuth ends a gated session whose peer opened a second
// stream before the first one authenticated it.
var ErrStreamBeforeAuth = errors.New("proxy: peer opened a second stream before authenticating")

// StreamGate reads the yamux frame headers a peer sends, under the session.
// yamux itself queues up to AcceptBacklog streams per session, each with a
// 256 KiB receive window, whether or not anyone accepts them: the gate is
// what keeps an unauthenticated peer to one.
type StreamGate struct {
	open atomic.Bool
	// Parse state, touched only by the session's single reader.
	hdr  [yamuxHeaderSize]byte
	n    int    // header bytes held
	body uint32 // bytes of the current data frame's body still to pass
	syns int
}

// Open lets the peer open further streams.
func (g *StreamGate) Open() { g.open.Store(true) }

const yamuxFlagSYN = 1

// scan follows the frames in p, the next bytes the peer sent; it fails at
// the first stream the peer may not open.
func (g *StreamGate) scan(p []byte) error {
	for len(p) > 0 {
		if g.body > 0 {
			k := min(uint32(len(p)), g.body)
			p, g.body = p[k:], g.body-k
			continue
		}
		k := copy(g.hdr[g.n:], p)
		p, g.n = p[k:], g.n+k
		if g.n < yamuxHeaderSize {
			return nil
		}
		g.n = 0
		typ, flags := g.hdr[1], binary.BigEndian.Uint16(g.hdr[2:4])
		if typ == yamuxTypeData {
			g.body = binary.BigEndian.Uint32(g.hdr[8:12])
		}
		// A SYN on a data or window update frame opens a stream; on a ping
		// or go-away the flags mean something else.
		if typ <= yamuxTypeWindowUpdate && flags&yamuxFlagSYN != 0 {
			g.syns++
			if g.syns > 1 && !g.open.Load() {
				return ErrStreamBeforeAuth
			}
		}
	}
	return nil
}

type gatedConn struct {
	net.Conn
	gate *StreamGate
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if gerr := c.gate.scan(p[:n]); gerr != nil {
		return 0, gerr // yamux ends the session on a read error
	}
	return n, err
}

func batched(conn net.Conn) net.Conn {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return conn
	}
	b, ok := tc.NetConn().(*BatchConn)
	if !ok {
		return conn
	}
	b.bufferReads()
	return &frameConn{Conn: conn, batch: b}
}

// BatchConn sits under a TLS connection and cuts its syscalls, which is
// where a bulk transfer spent most of its time. TLS writes each record (16
// KiB at most) with its own call; while a yamux frame is written the records
// are gathered and leave in one write. Under a tunnel, reads go through a
// 256 KiB buffer, so one syscall fetches many records. Outside a tunnel (the
// handshake, HTTP) it passes everything through.
type BatchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
	r        *bufio.Reader // set once the connection carries a tunnel
}

// NewBatchConn wraps a raw connection before TLS goes over it.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c} }

// bufferReads is called before the tunnel's first read, by the only reader.
func (b *BatchConn) bufferReads() { b.r = bufio.NewReaderSize(b.Conn, 256<<10) }

func (b *BatchConn) Read(p []byte) (int, error) {
	if b.r != nil {
		return b.r.Read(p)
	}
	return b.Conn.Read(p)
}

func (b *BatchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *BatchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

func (b *BatchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	if cap(b.buf) > 1<<20 {
		b.buf = nil // do not pin a large buffer for an idle tunnel
	}
	return err
}

// frameConn writes each yamux frame in one BatchConn flush. yamux's single
// send loop writes a data frame as two calls, the 12-byte header and then
// the body; the header opens a batch and the body closes it, so the peer
// gets both in one segment and wakes once. Frames without a body (window
// updates, pings, go-away, SYN/FIN with no data) pass at once.
type frameConn struct {
	net.Conn // the TLS connection
	batch    *BatchConn
	inFrame  bool
}

const (
	yamuxHeaderSize       = 12
	yamuxTypeData         = 0
	yamuxTypeWindowUpdate = 1
)

func (c *frameConn) Write(p []byte) (int, error) {
	if c.inFrame { // the body of the frame whose header opened the batch
		c.inFrame = false
		n, err := c.Conn.Write(p)
		if ferr := c.batch.flush(); err == nil && ferr != nil {
			return 0, ferr
		}
		return n, err
	}
	if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		c.batch.begin()
		c.inFrame = true
	}
	return c.Conn.Write(p)
}

// DialTLS dials addr and completes a TLS handshake over a BatchConn, ready
// for YamuxClient. A tunnel is TLS 1.3 whatever cfg allows: both ends are
// pamd.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	c := tls.Client(NewBatchConn(raw), cfg)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}
