package proxytest_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pamd/pamd/proxy/proxytest"
)

// TestServeEchoesAndStops: Serve's echo answers, and once the (sub)test
// has ended its connections are cut and nothing listens any more.
func TestServeEchoesAndStops(t *testing.T) {
	var addr string
	var c net.Conn
	t.Run("serve", func(t *testing.T) {
		addr = proxytest.Serve(t, proxytest.Echo)
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: %q %v", buf, err)
		}
	})
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection of a stopped server", n)
	}
	if c2, err := net.Dial("tcp", addr); err == nil {
		c2.Close()
		t.Fatal("the server still listens after its test ended")
	}
}

// TestPair: the two ends are connected both ways.
func TestPair(t *testing.T) {
	a, b := proxytest.Pair(t)
	defer a.Close()
	defer b.Close()
	go io.WriteString(a, "to b")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "to b" {
		t.Fatalf("a to b: %q %v", buf, err)
	}
}
