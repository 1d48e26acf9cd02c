package proxytest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve listens on 127.0.0.1 (a free port) and runs handle in its own
// goroutine for every connection, closing the connection when handle
// returns. It returns the address. When the test ends the listener and
// every open connection are closed; handlers are not waited for (one that
// holds something other than its connection may outlive the test).
func Serve(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxytest: listen: %v", err)
	}
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed { // accepted as the test ended
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			mu.Unlock()
			go func() {
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// Echo is a handler for Serve that writes back what it reads.
func Echo(c net.Conn) { io.Copy(c, c) }

// Pair returns the two ends of one TCP connection on loopback: a dialed,
// b accepted. The caller closes them.
func Pair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxytest: listen: %v", err)
	}
	defer ln.Close()
	if a, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatalf("proxytest: dial: %v", err)
	}
	if b, err = ln.Accept(); err != nil {
		a.Close()
		t.Fatalf("proxytest: accept: %v", err)
	}
	return a, b
}
