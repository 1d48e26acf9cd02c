// Package tcpproxy is the gateway's handler for raw TCP resources: it dials
// the target and relays bytes, recording only byte counts and timing.
//
// Files: tcpproxy.go.
package tcpproxy
