package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/pamd/pamd/internal/httpconnect"
	"github.com/pamd/pamd/proxy"
)

// dialServer makes the tunnel's connection to the server: straight, or
// through the HTTP proxy that Config.Proxy or the environment names, then
// TLS as proxy.DialTLS does it (over a proxy.BatchConn, which the tunnel's
// yamux batching needs).
func (g *gateway) dialServer(ctx context.Context) (*tls.Conn, error) {
	via, err := httpconnect.ForServer(g.cfg.Proxy, g.addr)
	if err != nil {
		return nil, err
	}
	if via == nil {
		return proxy.DialTLS(ctx, g.addr, g.tls)
	}
	g.log.Debug("reaching the server through a proxy", "proxy", httpconnect.Redacted(via))
	raw, err := httpconnect.Dial(ctx, via, g.addr)
	if err != nil {
		return nil, err
	}
	tc := g.tls.Clone()
	tc.MinVersion = tls.VersionTLS13 // as proxy.DialTLS does on the direct path
	c := tls.Client(proxy.NewBatchConn(raw), tc)
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS through proxy %s: %w", httpconnect.Redacted(via), err)
	}
	return c, nil
}

// dialTCP is the enrollment's dialer (http.Transport.DialContext): through
// the proxy Config.Proxy or the environment names for addr, or straight.
func dialTCP(proxyURL string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		via, err := httpconnect.ForServer(proxyURL, addr)
		if err != nil {
			return nil, err
		}
		if via == nil {
			d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
			return d.DialContext(ctx, network, addr)
		}
		return httpconnect.Dial(ctx, via, addr)
	}
}
