// Package tunnel is the specification and codec of the frames that open every
// yamux stream between pamd processes.
//
// # Connections
//
// All roles meet on the server's single TLS port; ALPN tells them apart:
//
//	pamd-tunnel/1   pamd connect → server   (TLS; the session credential authenticates each stream)
//	pamd-gateway/1  pamd gateway → server   (mutual TLS; the client certificate names the gateway)
//	http/1.1        API and web UI
//
// On both tunnel connections hashicorp/yamux runs on top of TLS. The side that
// dialled is the yamux client; either side may open streams.
//
// A pamd-tunnel/1 connection authenticates with its first stream (pamd
// connect opens its control stream and waits for the reply): that stream's
// header must arrive and its session credential check out within 5 seconds
// of the handshake. Until then the client may open no second stream; a
// second stream, a refused first stream or the deadline ends the
// connection. After it, a refused stream ends only that stream, and the
// server bounds the streams open at once on the connection.
//
// # Stream header
//
// The opener of a stream writes one header before anything else:
//
//	offset size  field
//	0      4     magic "PAMD"
//	4      1     version, currently 1
//	5      1     kind (see below)
//	6      4     body length N, big endian, at most the kind's limit (below)
//	10     N     body: one JSON object whose fields depend on kind
//
// The kinds the server opens (dial, probe, notice, rotate) may carry up to
// MaxBody (64 KiB): descriptors hold keys and certificates. All others
// (access, control, hello, record, renew, renew-now) carry at most MaxSmallBody (4 KiB); a
// reader checks the limit of the kind before it allocates the body, so a
// peer that has not authenticated yet cannot make it allocate more.
//
// Kinds and their bodies:
//
//	1 access   connect → server   Access{session_id, credential}; then raw bytes of one proxied connection
//	2 dial     server → gateway   Descriptor; then raw bytes of one proxied connection
//	3 control  connect → server   Access; then Messages both ways for the life of the session
//	4 hello    gateway → server   Hello{name, version, group}; first stream after the gateway
//	                              connects; group (optional, absent from older gateways) is
//	                              the gateway group it was told it is in: the server refuses
//	                              a group other than the one its record names (the admin's),
//	                              and serves it its record's group whatever it says
//	5 probe    server → gateway   Descriptor; the gateway reaches the target and answers one
//	                              Message "probe_result" whose detail is a ProbeResult
//	6 notice   server → gateway   Message "ended" with the session in detail: the gateway
//	                              tells that session's clients why and cuts them
//	7 record   gateway → server   Hello; then Messages "records" (a batch of Records) answered
//	                              by "ack" with the highest seq stored, or by "refused" (the
//	                              server then closes the stream); and unanswered "backlog"
//	                              Messages whose detail is a Backlog. A Record of type
//	                              "batch" carries other records of its connection (their
//	                              JSON as an array in its data, without session,
//	                              connection, channel and database, which are the
//	                              batch's); the server reads them one by one (Unbatch).
//	                              A Record's seq is the gateway's own numbering: the server
//	                              stores a session's records in its own order (several
//	                              gateways of a group may serve one session) and keeps the
//	                              seq only to drop a record the gateway sends again
//	8 rotate   server → gateway   Rotation; the gateway changes the account's credential on
//	                              the target and answers one Message "rotation_result"
//	                              whose detail is a RotationResult
//	9 renew    gateway → server   Renewal{csr, serial}; the server issues the gateway a new
//	                              client certificate for the CSR's key and answers one
//	                              Message "certificate" whose detail is a RenewalResult
//	                              {certificate, expires_at, server_cas}: server_cas are the
//	                              server CA fingerprints the gateway is to pin from now on,
//	                              at most 2 (the CA of the chain the server serves, then,
//	                              during a rotation of the server CA or until the server
//	                              serves a certificate from the CA a rotation made current,
//	                              the other one); more than 2 is an error and the renewal
//	                              is not kept. Absent (an older server): the pins stay. An
//	                              older gateway ignores server_cas and keeps its pin
//	10 watch   server → gateway   Watched{session_id, watcher}; the gateway tells the
//	                              session's terminals that someone watches them live, and
//	                              answers with a reply (a gateway that cannot refuses)
//	11 dbcert  gateway → server   DBClientCertRequest{session_id, csr}; the server signs the
//	                              CSR's key from the db-client CA for the session's pkinit
//	                              account (until its expiry, at most an hour) and answers
//	                              one Message "certificate" whose detail is a RenewalResult
//	                              (server_cas is never set there: only kind 9 changes pins)
//	12 renew-now server → gateway RenewNow{reason}; a CA rotation started, completed or was
//	                              rolled back: the gateway answers with a reply and renews
//	                              its certificate at once over a renew stream (the server
//	                              lifts its renewal rate limit for it). The renewal's
//	                              RenewalResult names the server CAs to pin (server_cas:
//	                              the current one, and the next during a rotation); the
//	                              gateway keeps them with its identity and accepts a
//	                              server chain matching any of them. An older gateway does
//	                              not know kind 12: it refuses the stream as an unknown
//	                              kind (the server lists it as not told and it renews at
//	                              half its certificate's lifetime, ignoring server_cas); an
//	                              older server never opens it
//
// Unknown kinds, a bad magic, an unsupported version or an oversized body are
// errors: the receiver closes the stream and keeps serving others.
//
// # Reply
//
// The receiver of a header answers with one reply before any payload:
//
//	offset size  field
//	0      1     version, currently 1
//	1      1     status: 0 ok; 1 refused (the message says why, in words fit
//	             for the user); 2 target failed (served, but the target could
//	             not be reached or logged into; the message says why and the
//	             handler tells the client in its own protocol)
//	2      2     message length M, big endian, at most MaxMessage
//	4      M     UTF-8 message
//	4+M    1     reason, only after status 2: why the target failed
//	             (0 other, 1 unreachable, 2 login refused, 3 host key
//	             mismatch, 4 protocol; a reader takes one it does not know
//	             as other)
//
// Only gateways send status 2, and only the server reads it (it answers
// pamd connect with ok and audits the reason), so the reason byte changes
// nothing between pamd connect and the server.
//
// After an ok or target-failed reply the stream carries the payload for its
// kind. After a refusal the receiver closes the stream.
//
// # Descriptor
//
// A dial, probe or rotate body describes the target (Descriptor): the
// fields every protocol shares (session, connection, user, resource,
// account, protocol, target host:port, expiry, client address, record) at
// the top, and one object named after the protocol with that protocol's
// settings and credentials, the only one set:
//
//	"tcp":     {}
//	"ssh":     {username, password, auth, private_key, passphrase, certificate, host_key, server_host_key}
//	"mongodb": {username, password, uri, auth_database, tls, tls_reject_unauthorized, tls_ca}
//	"mssql":   {username, password, auth, database, domain, realm, spn, kdc,
//	            upn, sid, kdc_ca, kdc_hostname, keytab,
//	            tls, tls_reject_unauthorized, tls_ca, tls_strict, server_tls_cert, server_tls_key}
//	"postgres": {username, password, database, tls, tls_reject_unauthorized,
//	            tls_ca, server_tls_cert, server_tls_key}
//
// A gateway handler reads only its protocol's object, so it never sees the
// credentials of another. This layout is new in this version: before it,
// one flat object held every protocol's fields. Server and gateway of the
// same version speak it; upgrade them together.
//
// # Messages
//
// Control, probe, record and rotate streams carry Messages: a 4-byte big-endian
// length (at most MaxMessageBody) followed by a JSON object with at least
// "type".
//
// # Versioning
//
// A peer that receives a version it does not know refuses the stream with a
// reply in version 1 saying which versions it speaks. New optional JSON fields
// may be added within a version; readers ignore fields they do not know.
//
// Files: header.go (Header, ReadHeader, Append), reply.go (Reply), message.go
// (Messages), bodies.go (the JSON bodies), batch.go (batch records),
// fuzz_test.go.
package tunnel
