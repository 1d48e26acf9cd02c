// Package mssqlproxy is the gateway's SQL Server handler: both ends of a
// proxied TDS connection ([MS-TDS], learn.microsoft.com/openspecs/
// windows_protocols/ms-tds).
//
// Toward the client it answers PRELOGIN and reads LOGIN7 as SQL Server
// would; a client that asks for encryption gets TLS inside PRELOGIN with
// the resource's certificate, others none (the tunnel is encrypted). A
// client may also start with LOGIN7 (no encryption then), or with TLS
// (TDS 8.0 strict encryption, ALPN tds/8.0; PRELOGIN and everything after
// inside it). The client's user name and password are ignored; its options
// are kept, its TDS version included: replies are read in the token
// layout of the version the server's LOGINACK accepted (tds.Version).
//
// Toward the server it sends PRELOGIN with the resource's encryption
// setting (TLS on by default, failing closed when the server cannot
// encrypt; with tls_strict, TLS first as TDS 8.0 has it), then LOGIN7 with the stored credential: a SQL login, NTLMv2
// through SSPI (go-mssqldb's ntlm package), or a Kerberos service ticket in
// SPNEGO (gokrb5). Kerberos (and PKINIT) logins are mutually authenticated:
// the AP-REQ sets the mutual-required AP option and GSS_C_MUTUAL_FLAG, and
// LOGINACK counts only after the server's SSPI token (a NegTokenResp with
// the krb5 AP-REP) decrypts with the ticket's session key and repeats the
// authenticator's ctime and cusec; without it the login is refused.
// LOGINACK, ENVCHANGE and INFO go back to the client (SSPI tokens do not);
// then packets are relayed as they come, ATTENTION included.
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
// Files: mssqlproxy.go (Handle), client.go (the client side up to
// LOGIN7: TLS first, PRELOGIN or LOGIN7 first), login.go (the server
// side), kerberos.go (Kerberos service tickets in SPNEGO), mutual.go (the
// mutual AP-REQ and the check of the server's AP-REP), windows.go
// (TGTs kept per account; PKINIT with a db-client certificate for a key
// made here, which the server signs per session), relay.go (packets and the query log), refuse.go
// (answering with an error), rotate.go (rotation with ALTER LOGIN, and
// Probe: reach the server, log in with an account).
package mssqlproxy
