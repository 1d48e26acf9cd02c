package httpconnect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/internal/httpconnect/httpconnecttest"
	"github.com/pamd/pamd/internal/leaktest"
	"github.com/pamd/pamd/proxy/proxytest"
)

// TestMain fails the run when the tests leave goroutines running.
func TestMain(m *testing.M) { leaktest.Main(m) }

// A password with what URLs must escape, to prove it reaches the proxy
// decoded.
const (
	user     = "gw-dc1"
	password = "p@ss:w/rd%hunter2"
)

// echo is a TCP server that sends back what it reads.
func echo(t *testing.T) string {
	return proxytest.Serve(t, func(c net.Conn) { io.Copy(c, c) })
}

func dial(t *testing.T, proxyURL *url.URL, addr string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Dial(ctx, proxyURL, addr)
}

// TestDialThroughProxy: the tunnel goes through the proxy (it counts it),
// with the credentials of the URL, and carries bytes both ways.
func TestDialThroughProxy(t *testing.T) {
	p := httpconnecttest.Start(t, user, password)
	target := echo(t)
	u, err := Parse(p.URL.String()) // the escaped form, as a person writes it
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, u, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the proxy: %q %v", buf, err)
	}
	if got := p.Tunnels(); !slices.Equal(got, []string{target}) || p.Refused() != 0 {
		t.Fatalf("proxy opened %v and refused %d; want one tunnel to %s", got, p.Refused(), target)
	}
}

// TestDialRefused: wrong or missing credentials are the proxy's 407, said
// plainly, and the password is in no error.
func TestDialRefused(t *testing.T) {
	p := httpconnecttest.Start(t, user, password)
	target := echo(t)
	for _, u := range []*url.URL{
		{Scheme: "http", Host: p.URL.Host, User: url.UserPassword(user, "wrong-hunter3")},
		{Scheme: "http", Host: p.URL.Host},
	} {
		_, err := dial(t, u, target)
		want := "proxy http://" + p.URL.Host + " refused CONNECT: 407 Proxy Authentication Required"
		var r *Refused
		if !errors.As(err, &r) || r.Code != http.StatusProxyAuthRequired || err.Error() != want {
			t.Errorf("%s: %v, want %q", Redacted(u), err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter3") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if p.Refused() != 2 || len(p.Tunnels()) != 0 {
		t.Fatalf("proxy refused %d and opened %v; want 2 refusals, no tunnel", p.Refused(), p.Tunnels())
	}
}

// fakeProxy answers every CONNECT with answer and hangs up; with no
// answer it waits for the client to.
func fakeProxy(t *testing.T, answer []byte) *url.URL {
	addr := proxytest.Serve(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		if answer == nil {
			io.Copy(io.Discard, c)
		}
		c.Write(answer)
	})
	return &url.URL{Scheme: "http", Host: addr}
}

// TestDialBadAnswers: whatever a proxy sends back, Dial says what was
// wrong, reading no more than MaxAnswer of it.
func TestDialBadAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		want   string
	}{
		{"not HTTP", []byte("SSH-2.0-OpenSSH_9.2\r\n"), "not an HTTP answer to CONNECT: malformed HTTP response"},
		{"a header that never ends", append([]byte("HTTP/1.1 200 OK\r\n"), bytes.Repeat([]byte("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), 4096)...), "its answer to CONNECT is over 16 KiB"},
		{"one endless line", bytes.Repeat([]byte("H"), 1<<20), "its answer to CONNECT is over 16 KiB"},
		{"cut short", []byte("HTTP/1.1 200 Connection established\r\nVia: 1.1"), "closed the connection instead of answering"},
		{"an error status", []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\noops!"), "refused CONNECT: 502 Bad Gateway"},
		{"a long reason", []byte("HTTP/1.1 403 " + strings.Repeat("no", 1000) + "\r\n\r\n"), "refused CONNECT: 403 nonono"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := fakeProxy(t, tt.answer)
			_, err := dial(t, u, "127.0.0.1:9")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "proxy http://"+u.Host) {
				t.Fatalf("%v, want proxy %s ... %q", err, u.Host, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("an error of %d bytes: the proxy's text must be clipped", len(err.Error()))
			}
		})
	}
}

// TestDialKeepsWhatFollowsTheAnswer: bytes the proxy sent right after its
// 200 are the tunnel's first, not lost in the header's buffer.
func TestDialKeepsWhatFollowsTheAnswer(t *testing.T) {
	u := fakeProxy(t, []byte("HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\nhello from the server"))
	c, err := dial(t, u, "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("hello from the server"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello from the server" {
		t.Fatalf("first bytes of the tunnel: %q %v", buf, err)
	}
}

// TestDialGivesUpWithItsContext: a proxy that never answers holds Dial
// only as long as its context.
func TestDialGivesUpWithItsContext(t *testing.T) {
	u := fakeProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, u, "127.0.0.1:9")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %v, want the context's deadline", time.Since(start), err)
	}
}

// TestDialUnreachableProxy names the proxy, not the server.
func TestDialUnreachableProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = dial(t, &url.URL{Scheme: "http", Host: addr, User: url.UserPassword(user, password)}, "127.0.0.1:9")
	if err == nil || !strings.HasPrefix(err.Error(), "proxy http://"+addr+": ") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("%v", err)
	}
}

// FuzzReadAnswer: whatever the proxy sends, readAnswer reads at most
// MaxAnswer bytes, and when it accepts, the bytes it hands on are exactly
// those that followed the header, which ended with an empty line.
func FuzzReadAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.1 200 OK\r\nProxy-Agent: squid\r\n\r\n\x16\x03\x03",
		"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\nContent-Length: 3\r\n\r\nno!",
		"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"SSH-2.0-x\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	req := connectRequest(&url.URL{Scheme: "http", Host: "proxy:3128"}, "pam.example.com:8443")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		early, err := readAnswer(r, req)
		if r.n > MaxAnswer {
			t.Fatalf("read %d bytes, more than %d", r.n, MaxAnswer)
		}
		if err != nil {
			return
		}
		read := data[:r.n]
		header := read[:len(read)-len(early)]
		if !bytes.Equal(read[len(header):], early) || !bytes.HasSuffix(header, []byte("\n")) {
			t.Fatalf("accepted %q with %q to follow", header, early)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
