// Package pkitest makes the certificates tests need in one call: a CA and
// one leaf it signed, by default a TLS server certificate for 127.0.0.1
// valid for an hour, as tls.Certificate, tls.Config and PEM.
//
// Files: pkitest.go.
package pkitest
