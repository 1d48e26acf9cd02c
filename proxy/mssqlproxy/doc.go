// Package mssqlproxy is the gateway's SQL Server handler: both ends of a
// proxied TDS connection ([MS-TDS], learn.microsoft.com/openspecs/
// windows_protocols/ms-tds).
//
// Toward the client it answers PRELOGIN and reads LOGIN7 as SQL Server
// would; a client that asks for encryption gets TLS inside PRELOGIN with
// the resource's certificate, others none (the tunnel is encrypted). The
// client's user name and password are ignored; its options are kept.
//
// Toward the server it sends PRELOGIN with the resource's encryption
// setting (TLS on by default, failing closed when the server cannot
// encrypt), then LOGIN7 with the stored credential: a SQL login, NTLMv2
// through SSPI (go-mssqldb's ntlm package), or a Kerberos service ticket in
// SPNEGO (gokrb5). LOGINACK, ENVCHANGE and INFO go back to the client; then
// packets are relayed as they come, ATTENTION included.
//
// Every SQL batch and RPC call is logged with its outcome, read from the
// reply token stream as it passes (tds.ReplyScanner). A batch longer than
// proxy.LogTextMax, or an RPC parameter longer than proxy.LogValueMax, is
// kept as its head and tail with the whole's length and SHA-256, and the
// record is marked truncated (tunnel.Cut). The login reply passes to the
// client only when it holds no credential of the account in any form
// (tds.SecretForms); texts pamd builds from the server's are scrubbed. Failures a client
// would otherwise see as a dropped connection reach it as a TDS ERROR token
// whose message starts with "pamd:".
//
// Files: mssqlproxy.go (Handle, the client side), login.go (the server
// side), kerberos.go, relay.go (packets and the query log), refuse.go
// (answering with an error), rotate.go (rotation with ALTER LOGIN).
package mssqlproxy
