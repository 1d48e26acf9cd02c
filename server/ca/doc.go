// Package ca is the server's internal PKI: the server CA clients and
// gateways pin (it signs only the server's own certificate), the gateway CA
// (gateway client certificates) and the resource CA (the certificates
// gateways show SQL Server clients), each made on first start and kept
// sealed in the store; and what the kinds keep per resource: SSH keys
// whose private halves never leave the server, and SQL Server
// certificates.
//
// The db-client CA signs the short-lived certificates gateways log in to
// Kerberos realms with (PKINIT); KDCs trust it (NTAuth, pkinit_anchors),
// and its CRL lists what was revoked.
//
// Each CA rotates: a next CA is made beside the current one and both are
// trusted (the overlap), then it is made current or dropped; the state is
// kept in the store, so a restart in the overlap keeps it. A retired CA is
// kept as its certificate alone. Each step builds its in-memory state in
// its transaction and swaps it in once that committed. The server pins
// advertised follow the chain served (Serving), not the CA state alone.
//
// Files: ca.go (the CAs, the server certificate, gateway certificates),
// rotate.go (CA rotation: start, complete, rollback, status, the bundle
// to trust during the overlap), sshrotate.go (rotating a resource's SSH
// user CA key), resource.go (per-resource keys and
// certificates), dbclient.go (the db-client certificate profile,
// revocation, the CRL), adsetup.go (the PowerShell script that makes
// Active Directory trust it).
package ca
