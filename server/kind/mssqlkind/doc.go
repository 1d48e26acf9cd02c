// Package mssqlkind is the mssql (SQL Server) resource type on the server.
// A resource keeps its settings in its options:
//
//	database                 where clients land unless they name one
//	tls                      "true" (default) or "false": TLS to the server
//	tls_reject_unauthorized  "true" (default) or "false"
//	tls_ca                   a CA certificate (PEM) to verify the server with
//
// Clients that ask pamd for encryption see a certificate for the resource
// signed by the resource CA (the server's Env.ResourceCertificate).
//
// Accounts log in with a SQL login (auth sql), NTLM, Kerberos with a
// password, or PKINIT (auth pkinit: no secret; the gateway gets a
// certificate from the db-client CA per session).
//
// Accounts are logged in with (through the gateway) before they are stored,
// unless the admin says --no-login-check; pkinit accounts are stored
// unchecked.
//
// Files: mssqlkind.go, pkinit.go (checking pkinit accounts).
package mssqlkind
