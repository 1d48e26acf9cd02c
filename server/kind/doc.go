// Package kind is the seam of resource types on the server: the Kind
// interface one package per type implements (sshkind, mongokind,
// mssqlkind, tcpkind), the optional Pinner and UserCA, Env (what kinds use
// of the server), Set (the kinds a server serves, and the descriptor
// built by a resource's kind), and what kinds share: typed TLS options, address checks,
// option merging and record summary helpers.
//
// Kinds keep their settings in the store's string map (store.Resource
// Options), as before; each kind parses it into a typed struct in one
// place and writes it back from it. Kinds import this package and never
// each other; the server wires them in one function (server/kinds.go).
//
// Files: kind.go, set.go.
package kind
