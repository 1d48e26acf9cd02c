// Package protocol groups pamd's pure codecs: wire formats that read from an
// io.Reader and write to an io.Writer and do no other I/O.
//
// Sub-packages:
//   - tunnel: the header every yamux stream starts with, and the session
//     descriptor the server hands a gateway.
//   - pki: certificate fingerprints, pinning and issuing.
//   - sftp: SFTP packets, for recording file operations.
//   - asciicast: terminal recordings in asciicast v2.
//   - mongowire: MongoDB wire protocol messages.
//   - tds: SQL Server's TDS packets, PRELOGIN, LOGIN7, result tokens, TLS in
//     PRELOGIN; tds/tdstest is a SQL Server stand-in for tests.
//   - ntlm: the server side of NTLMv2 (challenge, authenticate, verify).
//   - printable: others' text made safe for a terminal (control characters
//     shown escaped), for the CLI's output and SSH banners.
//
// Nothing here imports another pamd package.
package protocol
