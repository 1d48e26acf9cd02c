// Package tdstest is a SQL Server stand-in for tests: no real SQL Server
// runs on these machines, so pamd's tests speak to this server, written from
// [MS-TDS] and proven by connecting real clients to it directly first.
//
// This cut: PRELOGIN in every encryption mode (NOT_SUP; OFF: TLS inside
// PRELOGIN for the login only; ON and REQ: TLS for the whole connection), LOGIN7
// with SQL logins (a wrong password is error 18456, state 1, class 14, as
// SQL Server answers) and Windows logins by NTLMv2 through SSPI (checked per
// MS-NLMP by protocol/ntlm), LOGINACK with the database, collation and packet
// size ENVCHANGEs, SQL batches answered with real result sets for SELECT of
// literals and @@VERSION and with DONE for SET, USE and transaction
// statements, and ATTENTION acknowledged; Kerberos service tickets
// (SPNEGO or raw krb5) checked against a keytab, and an AP-REQ that
// requires mutual authentication answered as SQL Server does, with an
// AP-REP in an SSPI token before LOGINACK (in a NegTokenResp for SPNEGO;
// Server.APRep leaves it out or spoils it for tests); RPC (sp_executesql,
// sp_prepare, sp_prepexec, sp_execute, sp_unprepare); ALTER LOGIN ... WITH
// PASSWORD with SQL Server's rules: a login changes its own password only
// with OLD_PASSWORD, another's only as a sysadmin (error 15151 otherwise),
// and CheckPolicy refuses passwords Windows finds too simple (error 15118).
// Each TDS version from 7.0 to 7.4 is answered in its own token layout
// (LOGINACK names the client's version, or the highest below it the
// stand-in knows); LOGIN7 is taken without PRELOGIN, as SQL Server does;
// StartStrict speaks TDS 8.0 (TLS first, ALPN tds/8.0).
//
// Files: server.go, aprep.go (the AP-REP encoder and the mutual reply),
// kdc.go (a real MIT KDC on a private realm for tests),
// pkinitkdc.go (the KDC with PKINIT: its certificate from a CA of its own,
// the anchors it trusts for clients, CRL checking, AD-style settings).
package tdstest
