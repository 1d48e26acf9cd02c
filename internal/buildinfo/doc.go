// Package buildinfo names the version a pamd binary reports (pamd
// --version, the server's API and logs, the gateway's hello): the release
// tag linked into it by scripts/release, else what the Go toolchain
// recorded of the source it was built from, so a binary built from a
// checkout says which commit it is rather than just "dev".
//
// Files: version.go (Version and the order it prefers).
package buildinfo
