// Package pki holds the certificate rules every pamd role agrees on: the
// fingerprint format that pins the server's CA, the verification of a chain
// against that pin, key and certificate generation, and the ALPN names on
// the shared port. Pure functions over crypto/x509; no network I/O.
//
// A fingerprint is "SHA256:" followed by the lowercase hex SHA-256 of the
// certificate's DER bytes.
//
// Files: pki.go.
package pki
