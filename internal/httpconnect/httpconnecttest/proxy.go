package httpconnecttest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/pamd/pamd/proxy/proxytest"
)

// Proxy is a running test proxy.
type Proxy struct {
	// URL is the proxy's, with the user and password it wants
	// (http://USER:PASSWORD@127.0.0.1:PORT), or without when it wants none.
	URL *url.URL

	wantAuth string // the Proxy-Authorization it accepts; "" for any
	mu       sync.Mutex
	tunnels  []string // the target of each tunnel it opened
	refused  int      // CONNECTs refused for their credentials
}

// Start starts a proxy that wants user and password (basic authentication),
// or nothing when user is "".
func Start(t testing.TB, user, password string) *Proxy {
	t.Helper()
	p := &Proxy{}
	if user != "" {
		p.wantAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
	addr := proxytest.Serve(t, p.serve)
	p.URL = &url.URL{Scheme: "http", Host: addr}
	if user != "" {
		p.URL.User = url.UserPassword(user, password)
	}
	return p
}

// Tunnels returns the target of each tunnel opened so far.
func (p *Proxy) Tunnels() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tunnels...)
}

// Refused returns how many CONNECTs it refused for their credentials.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// serve answers one client connection: a CONNECT, then the tunnel.
func (p *Proxy) serve(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	switch {
	case req.Method != http.MethodConnect:
		answer(c, http.StatusMethodNotAllowed, "")
		return
	case p.wantAuth != "" && req.Header.Get("Proxy-Authorization") != p.wantAuth:
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		answer(c, http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"test\"\r\n")
		return
	}
	host, _, err := net.SplitHostPort(req.Host)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() { // tests reach this machine only
		answer(c, http.StatusForbidden, "")
		return
	}
	target, err := net.Dial("tcp", req.Host)
	if err != nil {
		answer(c, http.StatusBadGateway, "")
		return
	}
	defer target.Close()
	p.mu.Lock()
	p.tunnels = append(p.tunnels, req.Host)
	p.mu.Unlock()
	answer(c, http.StatusOK, "")
	done := make(chan struct{})
	go func() {
		io.Copy(c, target)
		c.Close() // the target is done: so is the client's side
		close(done)
	}()
	io.Copy(target, br) // what the client sent with its CONNECT, then the rest
	target.Close()
	<-done
}

// answer writes a status line and header; a refusal has an empty body,
// and a 2xx none at all (what follows is the tunnel's).
func answer(c net.Conn, code int, header string) {
	if code/100 != 2 {
		header += "Content-Length: 0\r\n"
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%s\r\n", code, http.StatusText(code), header)
}
