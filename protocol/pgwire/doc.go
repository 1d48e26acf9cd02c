// Package pgwire frames the PostgreSQL frontend/backend protocol (version
// 3.0, www.postgresql.org/docs/current/protocol-message-formats.html): the
// length-prefixed packets a connection starts with (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest) and the typed messages after
// them (a type byte, then a length that counts itself and the body).
//
// It only splits and builds frames, with their lengths checked both ways;
// the bodies are decoded and encoded with github.com/jackc/pgx/v5/pgproto3.
// Reading a startup packet never reads past it, so that no byte sent
// before a TLS handshake is taken as sent inside it.
//
// Files: pgwire.go.
package pgwire
