// Package local is the laptop side of pamd connect: a listener on loopback
// whose every accepted connection becomes one yamux stream over a single
// TLS connection to the server, authenticated by the access session's
// credential.
//
// A control stream stays open for the life of the session. The server
// writes "ended" on it when the session expires or is terminated; Run then
// cuts every connection and returns *Ended. When the connection to the
// server drops (a restart), Run closes the dropped tunnel and reconnects
// with backoff, keeping its listener and the same access session (the new
// tunnel authenticates with its credential); a reconnect refused because
// the session is over ends Run too. Run and Tunnel.End return only after
// their goroutines (accept loop, relays, the control stream's watch).
// When ctx is cancelled (Ctrl-C), Run tells the server to end the session.
//
// Files: local.go (Run, Dial and Tunnel: the listener, the tunnel and its
// control stream), ssh.go (RunSSH: pamd ssh's shell or command over a
// Tunnel, pinning pamd's host key), winch_unix.go and winch_windows.go
// (passing terminal size changes on: SIGWINCH, or polling on Windows).
package local
