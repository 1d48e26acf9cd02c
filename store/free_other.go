//go:build !unix

package store

// freeBytes is unknown here (the server runs on Linux; this build serves
// the client side).
func freeBytes(string) (uint64, bool) { return 0, false }
