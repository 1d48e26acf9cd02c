package local

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// Config is what Run needs.
type Config struct {
	Server      string // host:port of the pamd server
	Fingerprint string // pinned CA; empty trusts the system roots
	// NextFingerprint is pinned too: the next CA of a rotation of the
	// server's CA (the saved login learns it).
	NextFingerprint string
	// Pins, when set, gives the fingerprints to pin at each dial (the
	// saved login's now, so a tunnel that reconnects after a rotation
	// completed uses the ones it followed); Fingerprint and
	// NextFingerprint are used otherwise. Only when Fingerprint is set.
	Pins       func() (current, next string)
	SessionID  string
	Credential string
	Listen     string // loopback HOST:PORT; port 0 picks one
	Logger     *slog.Logger
	// Errors receives one line per refused connection, for the person
	// running connect (stderr).
	Errors io.Writer
	// Refuse, when set, answers a refused connection in the client's
	// protocol (the message is also written to Errors).
	Refuse func(lc net.Conn, msg string)
	// Ready is called once the listener is up and the tunnel works.
	Ready func(addr *net.TCPAddr)
}

// Ended is returned when the server ended the session.
type Ended struct{ Reason string }

func (e *Ended) Error() string { return "session ended: " + e.Reason }

func (c *Config) validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %q: pamd connect listens on loopback only", c.Listen)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Errors == nil {
		c.Errors = io.Discard
	}
	return nil
}

type conn struct {
	cfg  *Config
	mu   sync.Mutex
	sess *yamux.Session
	ctrl *yamux.Stream
	// closed is set by close: a reconnect finishing after it closes its
	// new tunnel instead of keeping it.
	closed bool
}

// errClosed is connect's answer once the conn is closed.
var errClosed = errors.New("pamd: tunnel closed")

// Run serves until ctx ends (then it ends the session) or the server ends
// the session (then it returns *Ended).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	c := &conn{cfg: &cfg}
	if err := c.connect(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		c.close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().(*net.TCPAddr))
	}

	relayCtx, cutAll := context.WithCancel(context.Background())
	defer cutAll()
	// wg counts the accept loop and every relay. The loop holds its count
	// until Accept fails, so each relay's Add happens while the counter is
	// above zero, never concurrently with a Wait on a zero counter.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			lc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.relay(relayCtx, lc)
			}()
		}
	}()

	ended := make(chan string, 1)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.watch(ctx, ended)
	}()
	var result error
	select {
	case reason := <-ended:
		result = &Ended{Reason: reason}
	case <-ctx.Done():
		ln.Close()
		c.endSession(ended)
	}
	ln.Close()
	cutAll()
	wg.Wait()
	c.close()
	// watch ends once ctx is done or the tunnel is closed; a reconnect it
	// finishes after close closes its own tunnel (see connect).
	<-watched
	return result
}

// connect dials the server and opens the control stream.
func (c *conn) connect(ctx context.Context) error {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{pki.ALPNTunnel}}
	if c.cfg.Fingerprint != "" {
		cur, next := c.cfg.Fingerprint, c.cfg.NextFingerprint
		if c.cfg.Pins != nil {
			if pc, pn := c.cfg.Pins(); pc != "" {
				cur, next = pc, pn
			}
		}
		tc = pki.PinnedClientConfig(cur, pki.ALPNTunnel, next)
	} else if host, _, err := net.SplitHostPort(c.cfg.Server); err == nil {
		tc.ServerName = host
	}
	nc, err := proxy.DialTLS(ctx, c.cfg.Server, tc)
	if err != nil {
		return fmt.Errorf("cannot reach pamd server %s: %w", c.cfg.Server, err)
	}
	sess, err := proxy.YamuxClient(nc)
	if err != nil {
		nc.Close()
		return err
	}
	// ctx ending while the server has not answered yet closes the new tunnel.
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	ctrl, err := c.open(sess, tunnel.KindControl)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		sess.Close()
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sess.Close()
		return errClosed
	}
	old := c.sess
	c.sess, c.ctrl = sess, ctrl
	c.mu.Unlock()
	if old != nil {
		old.Close() // a reconnect replaces the dropped tunnel; the access session is the same one
	}
	return nil
}

// open starts a stream of the given kind for this session and waits for
// the server's answer; a refusal comes back as *tunnel.Refusal.
func (c *conn) open(sess *yamux.Session, kind tunnel.Kind) (*yamux.Stream, error) {
	st, err := c.openStream(sess, kind)
	if err != nil {
		return nil, err
	}
	if err := readReply(st); err != nil {
		return nil, err
	}
	return st, nil
}

// openStream opens a stream of kind with the session's access header
// written, its reply not read yet.
func (c *conn) openStream(sess *yamux.Session, kind tunnel.Kind) (*yamux.Stream, error) {
	st, err := sess.OpenStream()
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	h, err := tunnel.NewHeader(kind, tunnel.Access{SessionID: c.cfg.SessionID, Credential: c.cfg.Credential})
	if err == nil {
		_, err = h.WriteTo(st)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// readReply reads the server's reply on st; a refusal is a
// *tunnel.Refusal. It closes st when the reply is no yes.
func readReply(st *yamux.Stream) error {
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	r, err := tunnel.ReadReply(st)
	st.SetReadDeadline(time.Time{})
	if err == nil {
		err = r.Err()
	}
	if err != nil {
		st.Close()
	}
	return err
}

func (c *conn) current() (*yamux.Session, *yamux.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, c.ctrl
}

// close closes the tunnel for good.
func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
}

// relay carries one local connection through its own stream.
//
// Without a Refuse, the client's bytes go on as soon as the access header
// is written, and only what comes back waits for the server's reply: a
// new connection whose client speaks first costs one round trip through
// the chain instead of two. A Refuse answers the client in its protocol
// and must read its first bytes itself, so with one the relay waits.
func (c *conn) relay(ctx context.Context, lc net.Conn) {
	defer lc.Close()
	sess, _ := c.current()
	if c.cfg.Refuse == nil {
		st, err := c.openStream(sess, tunnel.KindAccess)
		if err != nil {
			c.refused(lc, err)
			return
		}
		proxy.JoinAnswered(ctx, lc, st, nil, nil, func() error {
			err := readReply(st)
			if err != nil {
				c.refused(lc, err)
			}
			return err
		})
		return
	}
	st, err := c.open(sess, tunnel.KindAccess)
	if err != nil {
		c.refused(lc, err)
		return
	}
	proxy.Join(ctx, lc, st, nil, nil)
}

// refused says why a local connection is not served, on the terminal and,
// with a Refuse, to the client.
func (c *conn) refused(lc net.Conn, err error) {
	var ref *tunnel.Refusal
	msg := fmt.Sprintf("the tunnel to the server is down (%v)", err)
	if errors.As(err, &ref) {
		msg = ref.Message
		fmt.Fprintf(c.cfg.Errors, "pamd: connection from %s refused: %s\n", lc.RemoteAddr(), ref.Message)
	} else {
		fmt.Fprintf(c.cfg.Errors, "pamd: connection from %s failed: %s\n", lc.RemoteAddr(), msg)
	}
	if c.cfg.Refuse != nil {
		if !strings.HasPrefix(msg, "pamd:") {
			msg = "pamd: " + msg
		}
		c.cfg.Refuse(lc, msg)
	}
}

// watch reads the control stream; when the connection drops it reconnects.
func (c *conn) watch(ctx context.Context, ended chan<- string) {
	wait := 200 * time.Millisecond
	for {
		_, ctrl := c.current()
		m, err := tunnel.ReadMessage(ctrl)
		if err == nil {
			if m.Type == tunnel.MsgEnded {
				ended <- m.Reason
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		c.cfg.Logger.Warn("lost the connection to the pamd server; reconnecting", "err", err)
		// The dropped tunnel is closed before its replacement is dialled:
		// its streams are dead, and a half-open one must not linger. The
		// access session is re-used: the new tunnel authenticates with
		// the same session credential.
		if sess, _ := c.current(); sess != nil {
			sess.Close()
		}
		for {
			err := c.connect(ctx)
			if err == nil {
				c.cfg.Logger.Info("reconnected to the pamd server")
				break
			}
			if errors.Is(err, errClosed) {
				return
			}
			var ref *tunnel.Refusal
			if errors.As(err, &ref) {
				ended <- ref.Message
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))):
			}
			wait = min(wait*2, 2*time.Second)
		}
	}
}

// Tunnel is a session's connection to the server for callers other than
// Run (pamd ssh): it opens streams and reports the session's end.
type Tunnel struct {
	c       *conn
	ended   chan string
	stop    context.CancelFunc
	watched chan struct{} // closed when the watch goroutine returns
}

// Dial connects to the server for the session in cfg (Listen is unused).
func Dial(ctx context.Context, cfg Config) (*Tunnel, error) {
	cfg.Listen = "127.0.0.1:0"
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &conn{cfg: &cfg}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	t := &Tunnel{c: c, ended: make(chan string, 1), stop: stop, watched: make(chan struct{})}
	go func() {
		defer close(t.watched)
		c.watch(wctx, t.ended)
	}()
	return t, nil
}

// Open starts one access stream: a connection to the resource.
func (t *Tunnel) Open() (net.Conn, error) {
	sess, _ := t.c.current()
	return t.c.open(sess, tunnel.KindAccess)
}

// Ended delivers the reason when the server ends the session.
func (t *Tunnel) Ended() <-chan string { return t.ended }

// End asks the server to end the session, then closes the tunnel.
func (t *Tunnel) End() {
	t.stop()
	t.c.endSession(t.ended)
	t.c.close()
	<-t.watched
}

// endSession asks the server to end the session and waits briefly for its
// confirmation.
func (c *conn) endSession(ended <-chan string) {
	_, ctrl := c.current()
	if ctrl == nil {
		return
	}
	if _, err := (&tunnel.Message{Type: tunnel.MsgEnd}).WriteTo(ctrl); err != nil {
		return
	}
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
	}
}
