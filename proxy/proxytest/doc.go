// Package proxytest is the loopback plumbing tests of proxies, gateways and
// whole deployments share: Serve, a TCP server on 127.0.0.1 that runs a
// function for each connection and stops with the test, and Pair, the two
// ends of one loopback TCP connection (for handshakes that need the
// buffering net.Pipe lacks).
//
// Files: proxytest.go.
package proxytest
