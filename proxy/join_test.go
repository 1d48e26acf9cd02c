package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/proxy/proxytest"
)

// pairs returns connected (a, b) pairs over the transports Join meets.
func pairs(t *testing.T) map[string]func() (net.Conn, net.Conn) {
	tcp := func() (net.Conn, net.Conn) { return proxytest.Pair(t) }
	return map[string]func() (net.Conn, net.Conn){
		"tcp": tcp,
		"tls+yamux": func() (net.Conn, net.Conn) {
			client, server := tlsYamux(t)
			a, err := client.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			a.Write([]byte{0}) // yamux announces a stream with its first frame
			b, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			io.ReadFull(b, make([]byte, 1))
			return a, b
		},
	}
}

// tlsYamux connects a yamux client and server over TLS on BatchConns, the
// way pamd's tunnels are built.
func tlsYamux(t testing.TB) (client, server interface {
	OpenStream() (net.Conn, error)
	AcceptStream() (net.Conn, error)
}) {
	p := pkitest.New(t, pki.Leaf{CommonName: "srv", Server: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srvCh := make(chan *tls.Conn, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		c := tls.Server(NewBatchConn(raw), &tls.Config{Certificates: []tls.Certificate{p.Cert}, NextProtos: []string{pki.ALPNTunnel}})
		c.Handshake()
		srvCh <- c
	}()
	cc, err := DialTLS(context.Background(), ln.Addr().String(), pki.PinnedClientConfig(p.Fingerprint(), pki.ALPNTunnel))
	if err != nil {
		t.Fatal(err)
	}
	sc := <-srvCh
	cs, err := YamuxClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := YamuxServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return streamer{open: func() (net.Conn, error) { return cs.OpenStream() }, accept: func() (net.Conn, error) { return cs.AcceptStream() }},
		streamer{open: func() (net.Conn, error) { return ss.OpenStream() }, accept: func() (net.Conn, error) { return ss.AcceptStream() }}
}

type streamer struct{ open, accept func() (net.Conn, error) }

func (s streamer) OpenStream() (net.Conn, error)   { return s.open() }
func (s streamer) AcceptStream() (net.Conn, error) { return s.accept() }

// TestJoinHalfClose relays a request and, after the client half-closes,
// the whole answer: the shape of protocols that send then wait.
func TestJoinHalfClose(t *testing.T) {
	for name, mk := range pairs(t) {
		t.Run(name, func(t *testing.T) {
			client, relayIn := mk()  // client ↔ relay
			relayOut, target := mk() // relay ↔ target
			var up, down Counter
			done := make(chan error, 1)
			go func() { done <- Join(context.Background(), relayIn, relayOut, &up, &down) }()

			req := make([]byte, 3<<20)
			rand.Read(req)
			go func() {
				client.Write(req)
				closeWrite(client)
			}()
			got, err := io.ReadAll(target) // ends only if the half-close was passed on
			if err != nil || !bytes.Equal(got, req) {
				t.Fatalf("target got %d bytes (%v), want the %d sent", len(got), err, len(req))
			}
			target.Write([]byte("answer after EOF"))
			closeWrite(target)
			ans, err := io.ReadAll(client)
			if err != nil || string(ans) != "answer after EOF" {
				t.Fatalf("client got %q, %v", ans, err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Join: %v", err)
			}
			if up.Load() != int64(len(req)) || down.Load() != int64(len(ans)) {
				t.Fatalf("counted up %d down %d", up.Load(), down.Load())
			}
		})
	}
}

func TestJoinCancelCutsBothSides(t *testing.T) {
	for name, mk := range pairs(t) {
		t.Run(name, func(t *testing.T) {
			client, relayIn := mk()
			relayOut, target := mk()
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			go func() { done <- Join(ctx, relayIn, relayOut, nil, nil) }()
			time.Sleep(20 * time.Millisecond)
			start := time.Now()
			cancel(context.DeadlineExceeded)
			if err := <-done; err != context.DeadlineExceeded {
				t.Fatalf("Join returned %v, want the cancel cause", err)
			}
			for _, c := range []net.Conn{client, target} {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Fatal("read succeeded on a cut connection")
				}
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("cut took %s", d)
			}
		})
	}
}

// TestFramesOverBatchedTLS moves many streams' data at once through the
// frame batching, so interleaved frames must stay whole.
func TestFramesOverBatchedTLS(t *testing.T) {
	client, server := tlsYamux(t)
	const streams, size = 16, 1 << 20
	errc := make(chan error, streams)
	go func() {
		for i := 0; i < streams; i++ {
			s, err := server.AcceptStream()
			if err != nil {
				errc <- err
				return
			}
			go func() { io.Copy(s, s); s.Close() }()
		}
	}()
	for i := 0; i < streams; i++ {
		go func(i int) {
			s, err := client.OpenStream()
			if err != nil {
				errc <- err
				return
			}
			payload := bytes.Repeat([]byte{byte(i)}, size)
			go func() { s.Write(payload); s.Close() }()
			got, err := io.ReadAll(s)
			if err == nil && !bytes.Equal(got, payload) {
				err = io.ErrUnexpectedEOF
			}
			errc <- err
		}(i)
	}
	for i := 0; i < streams; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestJoinBurstsKeepOrder sends writes of the sizes where a relay moves
// between waiting and copying a burst (its small buffer, the burst and
// bulk ones, one byte either side) and checks the bytes arrive whole and
// in order.
func TestJoinBurstsKeepOrder(t *testing.T) {
	for name, mk := range pairs(t) {
		t.Run(name, func(t *testing.T) {
			client, relayIn := mk()
			relayOut, target := mk()
			done := make(chan error, 1)
			go func() { done <- Join(context.Background(), relayIn, relayOut, nil, nil) }()
			var sent bytes.Buffer
			for _, n := range []int{1, waitSize - 1, waitSize, waitSize + 1, burstSize - 1, burstSize, burstSize + 1, bulkSize, bulkSize + burstSize + 1, 3*bulkSize + 7, 5} {
				p := make([]byte, n)
				rand.Read(p)
				sent.Write(p)
			}
			go func() {
				for b := sent.Bytes(); len(b) > 0; {
					n := min(len(b), 1+len(b)%(bulkSize+3))
					client.Write(b[:n])
					b = b[n:]
					time.Sleep(time.Millisecond) // let the relay go back to waiting
				}
				closeWrite(client)
			}()
			got, err := io.ReadAll(target)
			if err != nil || !bytes.Equal(got, sent.Bytes()) {
				t.Fatalf("target got %d bytes (%v), want the %d sent, in order", len(got), err, sent.Len())
			}
			closeWrite(target)
			if err := <-done; err != nil {
				t.Fatalf("Join: %v", err)
			}
		})
	}
}
