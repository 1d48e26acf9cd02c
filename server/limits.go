package server

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limits bound what a peer can make the server hold before it has proved
// who it is, and how much an authenticated tunnel may hold at once.
type limits struct {
	// authTimeout: a pamd connect connection's first stream must have
	// authenticated this long after the TLS handshake; until then the
	// connection may open no second stream.
	authTimeout time.Duration
	// perSource: connections from one source (an IPv4 address or an IPv6
	// /64) that are in their TLS handshake or have not authenticated yet.
	perSource int
	// clientStreams and gatewayStreams: streams open at once on an
	// authenticated client connection and opened by a gateway. A client
	// has one stream per proxied connection, all of them over one tunnel
	// (the benchmarks hold thousands open), so that cap is generous; a
	// gateway opens record and renew streams, a few at a time.
	clientStreams  int
	gatewayStreams int

	// The HTTP server's limits; see newHTTPServer.
	httpReadHeader time.Duration
	httpRead       time.Duration
	httpIdle       time.Duration
	httpMaxHeader  int
}

func defaultLimits() limits {
	return limits{
		authTimeout:    5 * time.Second,
		perSource:      32,
		clientStreams:  16384,
		gatewayStreams: 256,
		httpReadHeader: 10 * time.Second,
		httpRead:       30 * time.Second,
		httpIdle:       2 * time.Minute,
		httpMaxHeader:  64 << 10,
	}
}

// sourceLimiter counts the unauthenticated connections of each source.
type sourceLimiter struct {
	mu  sync.Mutex
	n   map[netip.Prefix]int
	max int
}

func newSourceLimiter(max int) *sourceLimiter {
	return &sourceLimiter{n: map[netip.Prefix]int{}, max: max}
}

// acquire takes a slot for a connection from addr; release gives it back
// and may be called more than once.
func (l *sourceLimiter) acquire(addr net.Addr) (release func(), ok bool) {
	src := sourceOfAddr(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[src] >= l.max {
		return nil, false
	}
	l.n[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.n[src]--; l.n[src] <= 0 {
				delete(l.n, src)
			}
		})
	}, true
}

// sourceOfAddr is the unit one peer is assumed to control: its IPv4
// address, or its IPv6 /64 (one host is routinely given a whole /64).
func sourceOfAddr(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{} // not an IP connection: all such share one slot pool
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
