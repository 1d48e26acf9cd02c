// Package httpconnecttest is an HTTP CONNECT proxy for tests, on
// 127.0.0.1: it checks Proxy-Authorization, opens tunnels to loopback
// addresses only, relays bytes, and counts what it did, so a test can
// prove a connection went through it. It stops with the test.
//
// Files: proxy.go (Start, Proxy).
package httpconnecttest
