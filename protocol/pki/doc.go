// Package pki holds the certificate rules every pamd role agrees on: the
// fingerprint format that pins the server's CA, the verification of a chain
// against that pin, key and certificate generation, and the ALPN names on
// the shared port. Pure functions over crypto/x509; no network I/O.
//
// A fingerprint is "SHA256:" followed by the lowercase hex SHA-256 of the
// certificate's DER bytes.
//
// Identities are URI SANs: only the server's own certificate carries
// urn:pamd:server (Leaf.Server, never a plain URI), and each client-facing
// resource certificate urn:pamd:resource:ID. The pinned verifier refuses a
// resource identity always, and, when the pinned CA is one pamd made, any
// leaf without the server identity: pamd's server CA signed resource
// certificates (whose keys live on gateways) before it signed only the
// server's. A leaf under an operator's own CA (--tls-cert) needs no marker.
//
// Files: pki.go.
//
// Sub-packages: pkitest (a CA and a leaf for tests, in one call).
package pki
