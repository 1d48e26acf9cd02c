// Package gateway is the agent inside the private network. It enrolls once
// with a one-time token (keeping its key and certificate in its data dir),
// then keeps one mutual-TLS connection to the server with yamux on top,
// reconnecting with backoff and jitter; through an HTTP proxy's CONNECT
// when --proxy or the environment (HTTPS_PROXY, NO_PROXY) says so. Every
// stream the server opens is a dial (or probe) for one proxied connection,
// dispatched to the handler for the resource's protocol under a deadline
// at the session's expiry.
//
// The gateway never imports server or store: all it knows of a session is
// the descriptor on the stream.
//
// Session records (terminal I/O, commands, file operations) go to an
// encrypted spool on the gateway's disk before they are uploaded, so a
// server outage or a gateway crash loses nothing. Records are sized by their
// JSON encoding: terminal data is split over records that fit, a record that
// cannot be split is moved to a dead-letter file (the server gets a
// "dropped" record in its place), and the backlog is reported to the server.
//
// Its client certificate is short-lived (the server's --gateway-cert-lifetime,
// 24 h by default): once connected, and then at half of each certificate's
// lifetime, the gateway sends a CSR for a new key on a renew stream and
// replaces the pair in its data dir atomically (gateway.pem). A gateway
// whose certificate expired while it was offline must enroll again. During
// a CA rotation the server asks it to renew now (a renew-now stream); the
// renewal's answer names the server CAs to pin (the current and the next
// one), which it keeps in gateway.json and checks every dial against.
//
// Files: config.go (Config, identity files), handlers.go (the one map of
// protocol handlers, proxy.Handler, the dispatch goes through), enroll.go (token and
// enrollment), renew.go (the current certificate, its renewal and the server CAs pinned), gateway.go (Run, the connection loop, dispatch, probes,
// session ends, record upload), health.go (--health-listen: /healthz, /readyz, /metrics),
// dial.go (reaching the server, straight or
// through an HTTP proxy: internal/httpconnect), spool.go (the record spool), rotate.go
// (credential rotation on targets: change, verify with the new credential,
// retire the old one, with the operations the handler's proxy.Rotator gives),
// dbcert.go (asking the server to sign db-client certificates for PKINIT
// logins; the key stays on the gateway).
package gateway
