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
// Files: mssqlkind.go.
package mssqlkind
