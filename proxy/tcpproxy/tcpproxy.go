package tcpproxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// DialTimeout bounds how long the gateway tries to reach a target.
const DialTimeout = 10 * time.Second

// Handler is the gateway's tcp handler; it records nothing but bytes
// (counted by the server).
type Handler struct{}

// Handle serves one dial stream: it connects to d.Target, answers the
// server with a reply (a refusal names what failed), and relays until
// either side ends or ctx (bounded by the session's expiry) is done.
func (Handler) Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, _ proxy.Recorder) error {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	target, err := dialer.DialContext(dctx, "tcp", d.Target)
	cancel()
	if err != nil {
		proxy.Answer(stream, proxy.Refuse("pamd: gateway cannot reach %s for resource %s: %v", d.Target, d.Resource, unwrapDial(err)))
		return fmt.Errorf("dial %s: %w", d.Target, err)
	}
	// The client's first bytes, which the server passed on with the
	// descriptor, go to the target while the answer goes back: a client
	// that speaks first has its answer sooner.
	return proxy.JoinAnswered(ctx, stream, target, nil, nil, func() error { return proxy.Answer(stream, nil) })
}

// unwrapDial drops the "dial tcp" prefix layers so the user reads the cause.
func unwrapDial(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}
