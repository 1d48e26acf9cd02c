package leaktest

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait is how long Main lets goroutines wind down after the tests.
const Wait = 2 * time.Second

// Main runs the package's tests and then fails the run when goroutines the
// tests started are still running after Wait, printing their stacks. Call
// it from TestMain. A run that already failed is not checked: its
// goroutines may be stuck on what failed.
func Main(m *testing.M) {
	before := Snapshot()
	code := m.Run()
	if code == 0 {
		if left := Leaked(before, Wait); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "leaktest: %s", Report(left))
			code = 1
		}
	}
	os.Exit(code)
}

// Snapshot returns the stacks of the running goroutines by their header
// line ("goroutine 7" without the state).
func Snapshot() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		head, _, _ := strings.Cut(s, " [")
		out[head] = s
	}
	return out
}

// ignored are goroutines that are not a test's: other tests (a test's
// goroutine is created by the testing package) and the runtime's and
// standard library's own helpers.
func ignored(stack string) bool {
	for _, s := range []string{
		"created by testing.",
		"testing.(*T).Run(",
		"testing.tRunner(",
		"testing.(*M).",
		"runtime.goexit0",
		"os/signal.signal_recv",
		"runtime.ensureSigM",
		// gokrb5's process-wide replay cache sweeper, started once by the
		// first Kerberos acceptor (the SQL Server stand-in's), never ended.
		"GetReplayCache.func1",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// Leaked waits up to wait for the goroutines started since before to end,
// and returns the stacks of those still running.
func Leaked(before map[string]string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		var left []string
		for head, stack := range Snapshot() {
			if _, ok := before[head]; !ok && !ignored(stack) {
				left = append(left, stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Report describes the goroutines left running, with the first stacks.
func Report(left []string) string {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines left running:\n", len(left))
	for i, s := range left {
		if i == show {
			fmt.Fprintf(&b, "... and %d more\n", len(left)-show)
			break
		}
		b.WriteString(s)
		b.WriteString("\n\n")
	}
	return b.String()
}
