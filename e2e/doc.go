// Package e2e tests pamd as users run it: the built binary as separate
// server, gateway and connect processes on loopback, real TCP clients and
// servers, and the data file on disk. It has no non-test code but this
// comment.
//
// Files:
//   - harness_test.go: building the binary, starting processes, the echo target.
//   - helper_test.go: the test binary as echo, sink and plain-relay processes.
//   - sshd_test.go, ferret_test.go: real OpenSSH sshd and FerretDB, started by the tests.
//   - e2e_test.go: the end-to-end behaviour (data path, lifecycle, identity, audit, bad input).
//   - ssh_test.go, mongo_test.go, browser_test.go: SSH, MongoDB and the web console.
//   - bench_test.go, bench_ssh_test.go, bench_mongo_test.go: benchmarks that run each
//     workload direct and through pamd in the same run and print the ratio (PAMD_BENCH=1).
package e2e
