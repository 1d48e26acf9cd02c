package webterm

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// A WebSocket library rather than the protocol by hand: framing,
	// masking, fragmentation, control frames and the closing handshake
	// are easy to get subtly wrong, and coder/websocket is small, kept
	// up and has no dependencies.
	"github.com/coder/websocket"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/relay"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

// Config is what the terminal needs of the server.
type Config struct {
	Store *store.Store
	Log   *slog.Logger
	Relay *relay.Relay
	Kinds *kind.Set
	// PublicURL is the URL users reach the server by, if set: the console
	// may be loaded from its origin as well as from the request's host.
	PublicURL string
}

// Terminal serves the console's terminals.
type Terminal struct {
	cfg     Config
	origins []string // allowed besides the request's own host (websocket.AcceptOptions)
}

// New is the terminal.
func New(cfg Config) *Terminal {
	t := &Terminal{cfg: cfg}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		t.origins = []string{"https://" + u.Host}
	}
	return t
}

// pingEvery is how often the browser must answer a ping: a browser gone
// without closing (a laptop shut) frees its shell within a minute.
const pingEvery = 30 * time.Second

// Serve upgrades r to the terminal's WebSocket and runs a shell of sess
// until the shell, the session or the browser ends, or the server shuts
// down (r's context). The caller has checked that sess is the caller's
// own. An error (the request is not from the console's own origin) is
// the API's answer; once upgraded, whatever goes wrong is told to the
// browser on the WebSocket.
func (t *Terminal) Serve(w http.ResponseWriter, r *http.Request, sess *store.Session) error {
	if !t.sameOrigin(r) {
		return errOrigin(r)
	}
	size := sizeOf(r.URL.Query())
	// The HTTP server's read timeout would cut the terminal: it runs for
	// as long as the shell does.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: t.origins}) // no compression: it would mix typed secrets with what the target prints
	if err != nil {
		return nil // Accept has answered
	}
	t.run(r.Context(), newPeer(ws), sess, r.RemoteAddr, size)
	return nil
}

// CheckOrigin refuses a request that does not come from the console's own
// origin: a caller that acts before the upgrade (the live view tells the
// watched user) checks first.
func (t *Terminal) CheckOrigin(r *http.Request) error {
	if !t.sameOrigin(r) {
		return errOrigin(r)
	}
	return nil
}

// errOrigin refuses a WebSocket from another page than the console's.
// Cookies go with a WebSocket from any page: without this check another
// site could open a terminal with the user's cookie.
func errOrigin(r *http.Request) error {
	return api.Errorf(http.StatusForbidden, "the terminal is opened by the pamd console only (Origin %q)", r.Header.Get("Origin"))
}

// sameOrigin: the request's Origin is the server's own (the host the
// browser reached, or the public URL's).
func (t *Terminal) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false // browsers always send it on a WebSocket
	}
	if strings.EqualFold(o, "https://"+r.Host) {
		return true
	}
	for _, allowed := range t.origins {
		if strings.EqualFold(o, allowed) {
			return true
		}
	}
	return false
}

// sizeOf is the terminal's first size, from the query (cols, rows); 80×24
// when they are missing or out of bounds.
func sizeOf(q url.Values) Size {
	cols, _ := strconv.Atoi(q.Get("cols"))
	rows, _ := strconv.Atoi(q.Get("rows"))
	if s := (Size{Cols: cols, Rows: rows}); s.valid() {
		return s
	}
	return Size{Cols: 80, Rows: 24}
}

// run opens the shell over a connection of sess and relays it with the
// browser, then tells the browser why it ended.
func (t *Terminal) run(ctx context.Context, p *peer, sess *store.Session, remote string, size Size) {
	ls, refusal := t.cfg.Relay.Live(sess)
	if refusal != "" {
		p.finish(notLive(sess, refusal), nil)
		return
	}
	hostKey, user, err := t.target(sess)
	if err != nil {
		p.finish(control{Closed: err.Error()}, nil)
		return
	}
	gw, err := t.cfg.Relay.Dial(sess, remote)
	if err != nil {
		p.finish(control{Closed: err.Error()}, nil)
		return
	}
	nc := &countedConn{Conn: gw.Stream}
	// The browser's end is read and written until finish closes it, not
	// until ctx ends: the server's shutdown is told to the browser too.
	out := &toBrowser{p: p}
	// The session's end or the server's shutdown cuts the handshake too.
	cut := func() { gw.Stream.Close() }
	stopCut, stopEnd := context.AfterFunc(ctx, cut), context.AfterFunc(ls.Context(), cut)
	sh, err := openShell(nc, hostKey, user, size, out, func(line string) { out.Write([]byte(line + "\r\n")) })
	stopCut()
	stopEnd()
	if err != nil {
		end := control{Closed: err.Error()}
		if ls.Context().Err() != nil {
			end = control{Ended: sessions.ReasonOf(ls.Context())}
		}
		gw.End(nc.up.Load(), nc.down.Load(), err)
		p.finish(end, nil)
		return
	}
	// The relay's goroutines end once both the shell and the WebSocket are
	// closed: its output may be blocked on a browser that does not read.
	var wg sync.WaitGroup
	defer wg.Wait()
	end, err := relayShell(ctx, &wg, p, sh, ls)
	sh.close()
	gw.End(nc.up.Load(), nc.down.Load(), err)
	p.finish(end, err)
}

// notLive is what the browser is told of a session that carries no
// traffic: its end, or the relay's refusal.
func notLive(sess *store.Session, refusal string) control {
	switch {
	case !sess.EndedAt.IsZero():
		return control{Ended: sess.EndReason}
	case !time.Now().Before(sess.ExpiresAt):
		return control{Ended: "expired"}
	}
	return control{Closed: refusal}
}

// target is what pamd ssh takes from the session's grant: pamd's host
// key for the resource, which the resource's kind gives only when it is
// an SSH server, and the account's login name.
func (t *Terminal) target(sess *store.Session) (hostKey, user string, err error) {
	var (
		res  *store.Resource
		acct *store.Account
	)
	err = t.cfg.Store.View(func(tx *store.Tx) (err error) {
		if res, err = tx.Resource(sess.ResourceID); err != nil {
			return err
		}
		acct, err = tx.Account(sess.ResourceID, sess.AccountID)
		return err
	})
	if err != nil {
		return "", "", errors.New("pamd: the resource or account of this session was removed")
	}
	k, err := t.cfg.Kinds.Must(res)
	var g api.SessionGrant
	if err == nil {
		err = k.Grant(res, acct, &g)
	}
	if err != nil {
		t.cfg.Log.Error("terminal grant", "session", sess.ID, "err", err)
		return "", "", errors.New("pamd: preparing the terminal failed (see the server log)")
	}
	if g.SSHHostKey == "" {
		return "", "", errors.New("pamd: " + res.Name + " is a " + res.Type + " resource: the browser terminal opens shells on SSH servers only")
	}
	return g.SSHHostKey, acct.Username, nil
}

// relayShell passes the browser's input and sizes to the shell (its
// output goes to the browser as it comes) until the shell ends, the
// session or ctx does, or the browser goes. It says what to tell the
// browser, and the error that ended the connection (nil: the shell
// exited), for its record. Its goroutines, counted in wg, end when the
// caller has closed the shell and the WebSocket.
func relayShell(ctx context.Context, wg *sync.WaitGroup, p *peer, sh *shell, ls *sessions.Active) (control, error) {
	exited := make(chan string, 1)
	gone := make(chan error, 2)
	stop := make(chan struct{})
	defer close(stop)
	wg.Add(3)
	go func() { defer wg.Done(); exited <- sh.wait() }()
	go func() { defer wg.Done(); gone <- readInput(p, sh) }()
	go func() { defer wg.Done(); gone <- keepAlive(stop, p) }()
	sessionEnd := func() (control, error) {
		reason := sessions.ReasonOf(ls.Context())
		return control{Ended: reason}, errors.New(reason)
	}
	select {
	case <-ls.Context().Done():
		// The gateway has told the shell why and cut it: let its words
		// reach the browser first.
		select {
		case <-exited:
		case <-time.After(500 * time.Millisecond):
		}
		return sessionEnd()
	case why := <-exited:
		// When the session ends the gateway cuts the shell first, then the
		// session's context ends: wait a moment to say which it was.
		select {
		case <-ls.Context().Done():
			return sessionEnd()
		case <-time.After(time.Second):
		}
		return control{Closed: why}, nil
	case err := <-gone:
		if websocket.CloseStatus(err) != -1 {
			err = nil // the browser closed the terminal (the page went)
		}
		return control{}, err // nothing more reaches the browser
	case <-ctx.Done():
		return control{Closed: "pamd: the server is shutting down"}, errors.New("server shutting down")
	}
}

// readInput passes what the browser sends to the shell until the browser
// goes or breaks the protocol. What the shell no longer takes is dropped:
// its end is told by its wait, with the reason.
func readInput(p *peer, sh *shell) error {
	for {
		input, size, err := p.next(context.Background())
		if err != nil {
			return err
		}
		if size != nil {
			sh.resize(*size)
		} else {
			sh.input(input)
		}
	}
}

// keepAlive pings the browser until stop, and fails when it does not
// answer. A ping is not cut short: that would close the WebSocket before
// the browser is told why the terminal ends.
func keepAlive(stop <-chan struct{}, p *peer) error {
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), pingEvery)
			err := p.ws.Ping(ctx)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}

// toBrowser is the shell's output and errors, sent to the browser in
// bounded messages.
type toBrowser struct{ p *peer }

func (w *toBrowser) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), outputChunk)]
		if err := w.p.output(context.Background(), chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		b = b[len(chunk):]
	}
	return n, nil
}

// countedConn counts the bytes of the dial stream each way, for the
// connection's record: up toward the gateway, down from it.
type countedConn struct {
	net.Conn
	up, down atomic.Int64
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.down.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.up.Add(int64(n))
	return n, err
}
