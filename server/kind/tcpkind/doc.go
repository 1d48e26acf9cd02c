// Package tcpkind is the tcp resource type on the server: raw bytes to a
// host and port, with no credential and nothing recorded but bytes.
//
// Files: tcpkind.go.
package tcpkind
