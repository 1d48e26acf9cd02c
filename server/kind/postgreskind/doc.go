// Package postgreskind is the postgres (PostgreSQL) resource type on the
// server. A resource keeps its settings in its options:
//
//	database                 the database the gateway logs in to (required)
//	tls                      "true" (default) or "false": TLS to the server
//	tls_reject_unauthorized  "true" (default) or "false": verify-full
//	tls_ca                   a CA certificate (PEM) to verify the server with
//
// Clients that ask pamd for TLS (sslmode=require, verify-full) see a
// certificate for the resource signed by the resource CA
// (Env.ResourceCertificate), which pamd connect writes out for them.
//
// Files: postgreskind.go.
package postgreskind
