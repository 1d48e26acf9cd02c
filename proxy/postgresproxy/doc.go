// Package postgresproxy is the gateway's PostgreSQL handler: both ends of a
// proxied connection in the frontend/backend protocol 3.0
// (www.postgresql.org/docs/current/protocol.html).
//
// Toward the client it answers as a server: an SSLRequest gets TLS with the
// resource's certificate (signed by the resource CA, so sslmode=verify-full
// works with the CA pamd connect writes), a GSSENCRequest is declined, and
// the StartupMessage's user is ignored: the client is told authentication
// is OK without being asked for a password. Its other parameters
// (application_name, options, ...) go on to the server.
//
// Toward the server it sends an SSLRequest (TLS on and verify-full by
// default; a server that refuses TLS then is refused), then a
// StartupMessage with the stored user and the resource's database, and
// answers SCRAM-SHA-256 (xdg-go/scram; SCRAM-SHA-256-PLUS with
// tls-server-end-point channel binding over TLS when offered), MD5 or
// cleartext as the server asks, and requires the server's SCRAM proof.
// ParameterStatus, NoticeResponse, BackendKeyData and ReadyForQuery go
// back to the client; the key data is one pamd makes, mapped to the
// server's (cancel.go): a CancelRequest on another connection of the same
// session reaches the right backend, and one of any other session reaches
// nothing.
//
// Every simple Query, every Execute of the extended protocol (with its
// statement's text and its parameters: binary numbers, booleans and UUIDs
// decoded by the types Parse or the server's description gave, long
// values cut to their head, tail, length and SHA-256) and every COPY
// (direction, bytes, rows) is logged with its outcome (the CommandComplete
// tag, or SQLSTATE and message) and duration, read from the messages as
// they pass (relay.go). A connection's statements are recorded in
// batches (batch.go): those that finish within 100 ms of the first go as
// one batch record (tunnel.RecordBatch: their records as a JSON array in
// its Data, which the server reads back one by one), a lone one as a record of
// its own; a batch is recorded 100 ms after its first statement finished
// at the latest, and at once when the connection ends. Failures reach the
// client as an ErrorResponse whose message starts with "pamd:"; texts
// from the server before login are scrubbed of the account's credential.
// The password goes in clear text (when a server asks for it so) only
// inside TLS.
//
// Rotation sets a role's new password with ALTER ROLE, as the role or as a
// rotation account with CREATEROLE, sending it already hashed as the
// server's password_encryption says (a SCRAM-SHA-256 verifier, or MD5) so
// that it appears in no statement log.
//
// Files: postgresproxy.go (Handler, Handle, the client side), login.go
// (the server side), cancel.go (key mapping and CancelRequest), relay.go
// (messages and the query log), batch.go (the log's batches), refuse.go
// (ErrorResponse), rotate.go (rotation with ALTER ROLE and a password
// hashed ahead).
package postgresproxy
