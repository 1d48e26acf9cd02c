// Package relay serves pamd connect's tunnels: a connection authenticates
// with its first stream (a session's id and credential) before it may open
// another; each further stream is the session's control stream (the
// server says when the session ends, pamd connect may end it) or one
// proxied connection, relayed to the resource's gateway with the
// descriptor the resource's kind builds, and recorded as a connection of
// the session.
//
// Dial and Live are the same path for the server's own clients of a
// session (the web terminal): a connection dialled with the session's
// descriptor and recorded as one of its connections.
//
// Files: relay.go, dial.go (a session's connection to its gateway, and
// whether a session is live), connlog.go (connection records, committed
// off the data path), catalog.go (the resources and accounts connections
// use, kept in memory while the store's catalog generation stands).
package relay
