package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/tcpproxy"
)

// Backoff bounds between reconnection attempts; each wait is jittered ±20%.
const (
	backoffMin = 200 * time.Millisecond
	backoffMax = 2 * time.Second
)

// Run enrolls when needed, then serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	id := cfg.Identity
	if id == nil {
		var ok bool
		var err error
		if id, ok, err = LoadIdentity(cfg.DataDir); err != nil {
			return err
		}
		if !ok {
			if cfg.Token == "" {
				return fmt.Errorf("gateway: %s holds no enrollment: start once with --token (from pamd gateways token)", cfg.DataDir)
			}
			if id, err = Enroll(ctx, cfg.Token); err != nil {
				return err
			}
			if err := id.Save(cfg.DataDir); err != nil {
				return err
			}
			cfg.Logger.Info("gateway enrolled", "name", id.Name, "server", id.ServerURL)
		} else if cfg.Token != "" {
			cfg.Logger.Info("already enrolled; ignoring --token", "name", id.Name)
		}
	}
	g, err := newGateway(id, cfg)
	if err != nil {
		return err
	}
	return g.loop(ctx)
}

type gateway struct {
	id   *Identity
	cfg  Config
	log  *slog.Logger
	addr string
	tls  *tls.Config
	wg   sync.WaitGroup
}

func newGateway(id *Identity, cfg Config) (*gateway, error) {
	u, err := url.Parse(id.ServerURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("gateway: server URL %q in identity: %v", id.ServerURL, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cert, err := id.tlsCert()
	if err != nil {
		return nil, err
	}
	tc := pki.PinnedClientConfig(id.Fingerprint, pki.ALPNGateway)
	tc.Certificates = []tls.Certificate{cert}
	return &gateway{id: id, cfg: cfg, log: cfg.Logger.With("gateway", id.Name), addr: addr, tls: tc}, nil
}

// loop keeps a connection to the server, reconnecting after any loss.
func (g *gateway) loop(ctx context.Context) error {
	wait := backoffMin
	for {
		start := time.Now()
		err := g.session(ctx)
		if ctx.Err() != nil {
			g.wg.Wait()
			return nil
		}
		if time.Since(start) > 10*time.Second {
			wait = backoffMin // it was up for a while: this is a fresh outage
		}
		jittered := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		g.log.Warn("connection to server lost; reconnecting", "err", err, "in", jittered.Round(time.Millisecond))
		select {
		case <-time.After(jittered):
		case <-ctx.Done():
			g.wg.Wait()
			return nil
		}
		wait = min(wait*2, backoffMax)
	}
}

// session runs one connection: dial, hello, then serve streams until it drops.
func (g *gateway) session(ctx context.Context) error {
	c, err := proxy.DialTLS(ctx, g.addr, g.tls)
	if err != nil {
		return fmt.Errorf("dial %s: %w", g.addr, err)
	}
	sess, err := proxy.YamuxClient(c)
	if err != nil {
		c.Close()
		return err
	}
	defer sess.Close()
	if err := g.hello(sess); err != nil {
		return err
	}
	g.log.Info("connected to server", "server", g.addr)
	go func() {
		select {
		case <-ctx.Done():
			sess.Close()
		case <-sess.CloseChan():
		}
	}()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			if errors.Is(err, yamux.ErrSessionShutdown) {
				return errors.New("server closed the connection")
			}
			return err
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serveStream(ctx, st)
		}()
	}
}

func (g *gateway) hello(sess *yamux.Session) error {
	st, err := sess.OpenStream()
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := tunnel.NewHeader(tunnel.KindHello, tunnel.Hello{Name: g.id.Name, Version: g.cfg.Version})
	if err != nil {
		return err
	}
	if _, err := h.WriteTo(st); err != nil {
		return err
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := tunnel.ReadReply(st)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	return r.Err()
}

// serveStream handles one stream the server opened.
func (g *gateway) serveStream(ctx context.Context, st *yamux.Stream) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr, err := tunnel.ReadHeader(st)
	if err != nil {
		g.log.Warn("malformed stream header; stream closed", "err", err)
		return
	}
	st.SetReadDeadline(time.Time{})
	var d tunnel.Descriptor
	if hdr.Kind != tunnel.KindDial || hdr.Decode(&d) != nil {
		tunnel.Refuse("pamd gateway: cannot serve a %s stream", hdr.Kind).WriteTo(st)
		return
	}
	if !time.Now().Before(d.ExpiresAt) {
		tunnel.Refuse("pamd: session %s expired", d.SessionID).WriteTo(st)
		return
	}
	// The gateway enforces expiry itself too: the server may be gone.
	sctx, cancel := context.WithDeadline(ctx, d.ExpiresAt)
	defer cancel()
	start := time.Now()
	switch d.Protocol {
	case "tcp":
		err = tcpproxy.Handle(sctx, st, &d)
	default:
		tunnel.Refuse("pamd gateway %s does not support protocol %q (upgrade the gateway)", g.id.Name, d.Protocol).WriteTo(st)
		return
	}
	g.log.Info("connection closed", "conn", d.String(), "duration", time.Since(start).Round(time.Millisecond), "err", err)
}
