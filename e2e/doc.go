// Package e2e tests pamd as users run it: the built binary as separate
// server, gateway and connect processes on loopback, real TCP clients and
// servers, and the data file on disk. It has no non-test code but this
// comment.
//
// Files:
//   - harness_test.go: building the binary, starting processes, the echo target.
//   - helper_test.go: the test binary as echo, sink, plain-relay and
//     TLS-relay processes.
//   - sshd_test.go, ferret_test.go: real OpenSSH sshd and FerretDB, started by the tests;
//     each test's SSH keys, in an authorized keys file of its own.
//   - sysusers_test.go: the system users and sudoers files the SSH tests make, unique
//     to each run and removed at its end; a sweep of what a killed run left.
//   - e2e_test.go: the end-to-end behaviour (data path, lifecycle, identity, audit, bad input).
//   - dos_test.go: unauthenticated peers: stream floods on the tunnel, connections per source.
//   - gateway_lifecycle_test.go: gateway certificates: revocation, --replace, renewal, expiry.
//   - gateway_group_test.go: two gateways of a gateway group: connections shared, one
//     killed (only its connections end), one session's records from both kept.
//   - lifecycle_test.go: users' roles changed, passwords reset, users deleted, roles edited,
//     gateways removed (their resources moved): what each change ends at once.
//   - ssh_test.go, mongo_test.go, mssql_test.go, browser_test.go: SSH, MongoDB, SQL Server
//     and the web console.
//   - webterm_test.go: the console's SSH terminal in a real browser: typed, pasted, resized,
//     recorded, ended by a terminate or the expiry.
//   - rotation_test.go: credential rotation against sshd, FerretDB and the SQL stand-in.
//   - ca_rotation_test.go: CA rotation (server, gateway, ssh user CA) with a logged-in CLI and
//     a connected gateway across it, rollback, machines offline through a step, --force.
//   - output_test.go: what the CLI prints of others' text (escaped control characters).
//   - ops_test.go: health, readiness and metrics, the access log, backup and
//     restore, a rolled-back store, master-key rotation killed midway, a full disk,
//     the TLS certificate reloaded on SIGHUP.
//   - failpoints_test.go: tests that use the store's test hook; they run with
//     -tags failpoints, as scripts/test runs them (nofailpoints_test.go says so
//     otherwise). The binary under test is always built with the tag.
//   - records_test.go: session records through the gateway's spool (escaped output, the backlog).
//   - sso_test.go: SSO against real OpenID providers started by the tests (Ory Hydra,
//     whose login and consent the test answers through its admin API; the zitadel/oidc
//     example server for the device grant): the CLI's loopback flow, the console in
//     Chromium, groups to roles at each login, MFA from amr, tokens of another client
//     or expired refused, the provider down.
//   - bench_test.go, bench_tcp_test.go, bench_ssh_test.go, bench_mongo_test.go,
//     bench_mssql_test.go: benchmarks that run each workload direct, through the
//     tool a user would use instead (ssh -L, ssh -J), through three plain and
//     three TLS relays (the topology's cost without and with its crypto), and
//     through pamd in the same run, and print one table with the ratios
//     (PAMD_BENCH=1); they assert what they move, never a timing.
//
// Each test deploys its own pamd, targets and ports, so most run in parallel
// (t.Parallel; 8 at once unless -parallel says otherwise, see e2eParallel).
// Those that assert a time window or measure memory are not marked: Go runs
// them first, one at a time, before any parallel test starts. Tests wait for
// a condition (env.waitFor), and sleep only where time itself is tested (an
// expiry, a throttle's wait, a TOTP step, that nothing happens for a while).
package e2e
