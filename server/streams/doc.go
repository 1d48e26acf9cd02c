// Package streams holds the yamux stream helpers the gateway hub and the
// client relay share: accepting a session's first stream within a
// deadline, capping the streams open at once, and cutting a stream when a
// context ends.
//
// Files: streams.go.
package streams
