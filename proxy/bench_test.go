package proxy

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pamd/pamd/proxy/proxytest"
)

// BenchmarkRelayChain moves bytes the way one pamd connection does: a TCP
// client, a Join onto a stream of a TLS+yamux tunnel (pamd connect), a Join
// from that stream's far end onto a stream of a second tunnel (the
// server), and a Join from that one's far end onto a TCP target (the
// gateway). It all runs in this process; besides wall time it reports the
// process's CPU time per GiB moved, which a loaded machine blurs less.
func BenchmarkRelayChain(b *testing.B) {
	for _, dir := range []string{"up", "down"} {
		b.Run(dir, func(b *testing.B) {
			client, target, wait := relayChain(b)
			src, dst := client, target
			if dir == "down" {
				src, dst = target, client
			}
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(buf)))
			got := make(chan int64, 1)
			go func() { n, _ := io.Copy(io.Discard, dst); got <- n }()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := src.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			src.(interface{ CloseWrite() error }).CloseWrite()
			if n := <-got; n != int64(b.N*len(buf)) {
				b.Fatalf("moved %d of %d bytes", n, b.N*len(buf))
			}
			b.StopTimer()
			gib := float64(b.N*len(buf)) / (1 << 30)
			b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/gib, "cpu-ms/GiB")
			client.Close()
			target.Close()
			wait()
		})
	}
}

// relayChain builds the chain of BenchmarkRelayChain and returns its two
// TCP ends, and a function that waits for the relays once both are closed.
func relayChain(b *testing.B) (client, target net.Conn, wait func()) {
	client, connectIn := proxytest.Pair(b)
	gatewayOut, target := proxytest.Pair(b)
	toServer, atServer := streamPair(b)
	toGateway, atGateway := streamPair(b)
	var wg sync.WaitGroup
	for _, ends := range [][2]net.Conn{{connectIn, toServer}, {atServer, toGateway}, {atGateway, gatewayOut}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Join(context.Background(), ends[0], ends[1], nil, nil)
		}()
	}
	return client, target, wg.Wait
}

// streamPair is the two ends of one stream over its own tunnel.
func streamPair(b *testing.B) (net.Conn, net.Conn) {
	client, server := tlsYamux(b)
	a, err := client.OpenStream()
	if err != nil {
		b.Fatal(err)
	}
	a.Write([]byte{0}) // yamux announces a stream with its first frame
	s, err := server.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	io.ReadFull(s, make([]byte, 1))
	return a, s
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
