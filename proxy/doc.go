// Package proxy holds both ends of a proxied connection: Join, the relay
// every hop uses (laptop, server, gateway), and in sub-packages the
// per-protocol handlers the gateway dispatches to and the laptop-side local
// proxy behind pamd connect.
//
// Sub-packages:
//   - tcpproxy: the gateway's raw TCP handler (dial the target, relay bytes).
//   - local: pamd connect's listener on 127.0.0.1 and its tunnel to the server.
//
// Files: join.go (Join, Counter), yamux.go (the yamux settings every tunnel
// shares).
package proxy
