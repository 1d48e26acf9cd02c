// Package server is pamd's control plane: the HTTPS API, the tunnel endpoint
// for gateways and pamd connect, authentication and authorisation, access
// sessions, the audit log, and serving the web UI. All of it listens on one
// TCP port; TLS ALPN tells the roles apart (see protocol/tunnel).
//
// Files:
//   - config.go: Config and its validation.
//   - server.go: New (data dir, master key, store, CA), Serve (accept, ALPN dispatch, graceful shutdown).
//   - pki.go: the internal CAs (server, gateway client, resource; each for one
//     job, the latter two made at start for data dirs from before), the
//     server certificate, gateway certificates.
//   - gateways.go: gateway certificate lifecycle: --replace for enrolled names,
//     revocation, admitting a connecting gateway, renewal over the tunnel.
//   - auth.go: argon2id passwords, TOTP with replay protection, logins, API tokens and their
//     revocation, the first-start bootstrap (a one-time admin password kept in a file).
//   - throttle.go: backoff of failed logins and MFA codes per source, name and token;
//     the cap on password hashes running at once.
//   - policy.go: role grants (RESOURCE_GLOB/ACCOUNT_GLOB, maximum duration, reason).
//   - api.go: routing, authentication middleware, JSON errors, audit helpers.
//   - api_identity.go, api_resources.go, api_sessions.go: the handlers.
//   - hub.go: connected gateways (mutual TLS + yamux), cut when their
//     certificate expires unrenewed.
//   - live.go: active sessions, their expiry timers and ending.
//   - relay.go: pamd connect's tunnel: authenticating a connection by its first
//     stream, control streams and relayed connections.
//   - limits.go: what a peer may hold: unauthenticated connections per source,
//     the deadline to authenticate, streams per tunnel, the HTTP server's limits.
//   - kinds.go: the one place the resource types are wired (ssh, mongodb,
//     mssql, tcp; see the kind sub-packages), GET /api/v1/kinds (the
//     console's forms), and what the kinds use of the server.
//   - targets.go: per-resource keys and certificates the kinds ask for, probes
//     through gateways, and the endpoints of pinned host keys and user CAs.
//   - records.go: session records from gateways, their API (each with its
//     kind's summary) and asciicast rendering.
//   - api_update.go: editing resources and accounts.
//   - rotation.go: credential rotation: the sealed-first state machine, password
//     policy, the schedule and resuming interrupted rotations, the rotate API.
//   - uiauth.go: the web console's cookie sessions and CSRF tokens.
//
// Everything a resource type does is in its kind (server/kind): checking
// its settings, the descriptor's part for its protocol, the session
// grant and the lines pamd connect prints, how it rotates, its tests and
// the summaries of its records. No code here switches on a type's name.
//
// Sub-packages: api (the JSON types), apiclient (the CLI's client), kind
// (the Kind interface and what kinds share) with one package per kind:
// kind/sshkind, kind/mongokind, kind/mssqlkind, kind/tcpkind; servertest
// (a whole pamd in a test's process, for tests here and in gateway).
package server
