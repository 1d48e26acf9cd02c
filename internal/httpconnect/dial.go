package httpconnect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// MaxAnswer bounds the proxy's answer to CONNECT, status line and header:
// real ones are a few hundred bytes.
const MaxAnswer = 16 << 10

// Timeouts as proxy.DialTLS has them: reaching the proxy, then its answer
// (which includes its own dial of addr).
const (
	dialTimeout   = 10 * time.Second
	answerTimeout = 15 * time.Second
)

// Refused is a proxy's answer to CONNECT other than 2xx.
type Refused struct {
	Proxy  string // as Redacted names it
	Code   int
	Status string // "407 Proxy Authentication Required", clipped
}

func (e *Refused) Error() string {
	return fmt.Sprintf("proxy %s refused CONNECT: %s", e.Proxy, e.Status)
}

// Dial connects to addr (host:port) through the HTTP proxy at proxyURL
// (from Parse or ForServer) and returns the tunnel once the proxy has said
// yes. Errors name the proxy by Redacted.
func Dial(ctx context.Context, proxyURL *url.URL, addr string) (net.Conn, error) {
	name := Redacted(proxyURL)
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", hostPort(proxyURL))
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	tunnel, err := connect(ctx, c, connectRequest(proxyURL, addr))
	if err != nil {
		c.Close()
		var r *Refused
		if errors.As(err, &r) {
			r.Proxy = name
			return nil, r
		}
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	return tunnel, nil
}

// connect sends req on c and reads the answer, within answerTimeout and
// ctx.
func connect(ctx context.Context, c net.Conn, req *http.Request) (net.Conn, error) {
	c.SetDeadline(time.Now().Add(answerTimeout))
	// The context's end cuts the wait short; it is done by the time the
	// read fails, so the error is the context's.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(c); err != nil {
		return nil, fmt.Errorf("CONNECT %s: %w", req.Host, err)
	}
	early, err := readAnswer(c, req)
	if !stop() || (err != nil && ctx.Err() != nil) {
		return nil, fmt.Errorf("CONNECT %s: %w", req.Host, ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	if len(early) > 0 {
		return &prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(early), c)}, nil
	}
	return c, nil
}

// connectRequest is CONNECT addr, with basic authentication when the URL
// has a user.
func connectRequest(proxyURL *url.URL, addr string) *http.Request {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{"User-Agent": {"pamd"}},
	}
	if u := proxyURL.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	return req
}

// readAnswer reads the proxy's answer to req from r, at most MaxAnswer
// bytes of it, and returns what the proxy sent past it: the start of the
// tunnel, should the proxy have had some already. An answer other than 2xx
// is a *Refused (without Proxy).
func readAnswer(r io.Reader, req *http.Request) (early []byte, err error) {
	lr := &io.LimitedReader{R: r, N: MaxAnswer}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := http.ReadResponse(br, req)
	var ne net.Error
	switch {
	case err != nil && lr.N == 0:
		return nil, fmt.Errorf("its answer to CONNECT is over %d KiB", MaxAnswer>>10)
	case errors.As(err, &ne) && ne.Timeout():
		return nil, fmt.Errorf("no answer to CONNECT within %s", answerTimeout)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("it closed the connection instead of answering CONNECT")
	case err != nil:
		return nil, fmt.Errorf("not an HTTP answer to CONNECT: %s", clip(err.Error()))
	case resp.StatusCode/100 != 2:
		return nil, &Refused{Code: resp.StatusCode, Status: clip(resp.Status)}
	}
	// A 2xx answer to CONNECT has no body (RFC 9110 §9.3.6): what follows
	// its header is the tunnel's.
	early, _ = br.Peek(br.Buffered())
	return bytes.Clone(early), nil
}

// clip keeps what the proxy wrote into an error short: it ends up in logs.
func clip(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// prefixConn reads first what the proxy sent past its answer.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }
