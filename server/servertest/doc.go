// Package servertest runs a whole pamd in the test's process: a server on
// a loopback port with its data dir in t.TempDir(), an API client logged in
// as admin, and a gateway enrolled and connected the way pamd dev runs its
// own (Server.EnrollLocal, then gateway.Run over mutual TLS). Helpers add
// users with roles, log in as them, start echo targets behind tcp
// resources and open access sessions through the real relay (proxy/local,
// as pamd connect does).
//
// Tests drive the server through its HTTP API and exported functions only,
// so they keep working while its internals move.
//
// When the test ends everything stops, the data file is checked (every value
// opens, see storetest), and no goroutine the environment started may be left
// running.
//
// Files: servertest.go (New, Env, users, resources, sessions); the
// goroutine leak check is internal/leaktest's.
package servertest
