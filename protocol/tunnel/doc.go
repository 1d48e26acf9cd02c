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
// # Stream header
//
// The opener of a stream writes one header before anything else:
//
//	offset size  field
//	0      4     magic "PAMD"
//	4      1     version, currently 1
//	5      1     kind (see below)
//	6      4     body length N, big endian, at most MaxBody
//	10     N     body: one JSON object whose fields depend on kind
//
// Kinds and their bodies:
//
//	1 access   connect → server   Access{session_id, credential}; then raw bytes of one proxied connection
//	2 dial     server → gateway   Descriptor; then raw bytes of one proxied connection
//	3 control  connect → server   Access; then Messages both ways for the life of the session
//	4 hello    gateway → server   Hello{name, version}; first stream after the gateway connects
//	5 probe    server → gateway   Descriptor; the gateway reaches the target and answers one
//	                              Message "probe_result" whose detail is a ProbeResult
//	6 notice   server → gateway   Message "ended" with the session in detail: the gateway
//	                              tells that session's clients why and cuts them
//	7 record   gateway → server   Hello; then Messages "records" (a batch of Records) answered
//	                              by "ack" with the highest seq stored
//	8 rotate   server → gateway   Rotation; the gateway changes the account's credential on
//	                              the target and answers one Message "rotation_result"
//	                              whose detail is a RotationResult
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
//
// After an ok or target-failed reply the stream carries the payload for its
// kind. After a refusal the receiver closes the stream.
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
// (Messages), bodies.go (the JSON bodies), fuzz_test.go.
package tunnel
