// Package server is pamd's control plane: the HTTPS API, the tunnel endpoint
// for gateways and pamd connect, authentication and authorisation, access
// sessions, the audit log, and serving the web UI. All of it listens on one
// TCP port; TLS ALPN tells the roles apart (see protocol/tunnel).
//
// This package is the composition root: it opens the store, builds the
// parts below, each given what it uses of the others, and serves them on
// one port.
//
// Files:
//   - config.go: Config and its validation.
//   - server.go: New (data dir, master key, store, the parts), Serve
//     (accept, ALPN dispatch, graceful shutdown), pamd dev's helpers.
//   - limits.go: what a peer may hold: unauthenticated connections per
//     source, the deadline to authenticate, streams per tunnel, the HTTP
//     server's limits.
//   - kinds.go: the one place the resource types are wired (ssh, mongodb,
//     mssql, tcp), and what the kinds use of the server.
//   - dbclient.go: the CRL distribution point of db-client certificates.
//
// The parts, one package each, none importing the server:
//   - auth: passwords, TOTP, logins and their throttling, tokens, CSRF,
//     the caller of a request, the first admin.
//   - ca: the internal CAs and the per-resource keys and certificates.
//   - hub: connected gateways, streams to them, records and renewals from
//     them.
//   - sessions: live sessions, their expiry and ending; role grants.
//   - relay: pamd connect's tunnels.
//   - webterm: the console's SSH terminal, a WebSocket to a shell over a
//     connection the relay dials.
//   - rotation: credential rotation, behind a small interface of the hub.
//   - httpapi: the HTTP API's routes and handlers.
//   - audit: appending audit events.
//   - metrics: the Prometheus metrics the parts update and the gauges of
//     their state.
//   - streams: yamux stream helpers the hub and relay share.
//   - kind: the Kind interface and the set of kinds, with one package per
//     kind: kind/sshkind, kind/mongokind, kind/mssqlkind, kind/tcpkind.
//   - api: the JSON types; apiclient: the CLI's client; servertest: a whole
//     pamd in a test's process.
//
// Everything a resource type does is in its kind (server/kind): checking
// its settings, the descriptor's part for its protocol, the session
// grant and the lines pamd connect prints, how it rotates, its tests and
// the summaries of its records. No code outside the kinds switches on a
// type's name.
package server
