package servertest

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// goroutines returns the stacks of the running goroutines by their
// header line ("goroutine 7 [running]:" without the state).
func goroutines() map[string]string {
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

// ignored are goroutines that are not the environment's: other tests (a
// test's goroutine is created by the testing package) and the runtime's
// and standard library's own helpers.
func ignored(stack string) bool {
	for _, s := range []string{
		"created by testing.",
		"testing.(*T).Run(",
		"testing.tRunner(",
		"runtime.goexit0",
		"os/signal.signal_recv",
		"runtime.ensureSigM",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// leaked waits up to wait for the goroutines started since before to end,
// and returns the stacks of those still running.
func leaked(before map[string]string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		var left []string
		for head, stack := range goroutines() {
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

func leakReport(left []string) string {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines left running after the environment stopped:\n", len(left))
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
