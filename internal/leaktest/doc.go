// Package leaktest finds goroutines a test left running: it takes the
// stacks of the running goroutines before, waits for those started since to
// end, and reports the stacks of any that do not. Main does it for a whole
// package's tests (from its TestMain); Snapshot, Leaked and Report for one
// environment (server/servertest).
//
// Goroutines of the testing package and of the runtime's and standard
// library's own helpers are not counted.
//
// Files: leaktest.go (Main, Snapshot, Leaked, Report).
package leaktest
