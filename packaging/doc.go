// Package packaging holds what installs pamd on a machine, and the tests
// that keep it true to the binary. It has no Go code of its own.
//
// Files: systemd/pamd-server.service and systemd/pamd-gateway.service (the
// units), systemd/server.env.example and systemd/gateway.env.example (their
// environment files), and systemd_test.go, which runs systemd-analyze
// verify and security on each unit against a built pamd, and checks the
// sandbox directives and the flags and variables the units and examples
// use against the CLI's.
package packaging
