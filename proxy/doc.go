// Package proxy holds both ends of a proxied connection: Join, the relay
// every hop uses (laptop, server, gateway), and in sub-packages the
// per-protocol handlers the gateway dispatches to and the laptop-side local
// proxy behind pamd connect.
//
// Handler (handler.go) is the seam every protocol's gateway handler
// implements, with the optional Prober, Rotator, SessionEnder, Sweeper and
// Closer;
// Recorder is what they record to; Answer writes every dial reply (ok,
// refused, or target failed with a tunnel.Reason from a TargetError). A
// handler reads only its protocol's part of the descriptor.
//
// Sub-packages:
//   - tcpproxy: the gateway's raw TCP handler (dial the target, relay bytes).
//   - sshproxy: the gateway's SSH handler (credential injection, recording).
//   - mongoproxy: the gateway's MongoDB handler (SCRAM injection, command log).
//   - mssqlproxy: the gateway's SQL Server handler (LOGIN7 injection, query log).
//   - postgresproxy: the gateway's PostgreSQL handler (SCRAM, MD5 or password
//     injection, cancel mapping, statement log).
//
// The ssh, mongodb, mssql and postgres handlers also change credentials on
// their targets for rotation (rotate.go in each).
//   - local: pamd connect's listener on 127.0.0.1, its tunnel to the server,
//     and pamd ssh's client.
//   - proxytest: for tests, a loopback server per connection and a TCP pair.
//
// Files: handler.go (Handler and its optional interfaces, Recorder,
// TargetOps, TargetError, Answer), join.go (Join, Copy, Counter: relays
// that hold a pooled buffer only while data flows), yamux.go (the yamux settings every tunnel
// shares, DialTLS, BatchConn, which gives each yamux frame one TLS write, and
// StreamGate, which keeps a peer to one stream until it has authenticated),
// pause.go and pause_failpoints.go (PauseForTest, the hook rotation's kill
// tests stop at: a no-op unless built with -tags failpoints), clip.go (Clip
// and Clipper: the command logs' bounds, keeping a long text's head, tail,
// length and SHA-256), notices.go (Notices: messages for the person at a
// connection's client, such as who watches the session).
package proxy
