package proxy

import (
	"io"
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
