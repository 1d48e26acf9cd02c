package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmarks run each workload direct to the target and through pamd
// (connect → server → gateway → target, all on loopback, both tunnel legs
// TLS) in the same run, and print the ratio; the tcp workloads also through
// plain relays, TLS relays and ssh -L (bench_tcp_test.go). They run with PAMD_BENCH=1
// (scripts/bench); PAMD_BENCH_QUICK=1 shrinks them for CI.

func benchEnabled(t *testing.T) {
	if os.Getenv("PAMD_BENCH") == "" {
		t.Skip("benchmarks run with PAMD_BENCH=1 (scripts/bench)")
	}
}

func quick() bool { return os.Getenv("PAMD_BENCH_QUICK") != "" }

// guard reports a figure past its target. It never fails the test: the
// machines are shared (the 2-core CI one swings latency by 4x between
// runs), so a timing says nothing a test may fail on. What the benchmarks
// move is checked and fails them.
func guard(t *testing.T, format string, args ...any) {
	t.Helper()
	fmt.Printf("BENCH below target: %s\n", fmt.Sprintf(format, args...))
}

func pingPong(t *testing.T, addr string, rounds int) []time.Duration {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("0123456789abcdef0123456789abcdef")
	buf := make([]byte, len(msg))
	lat := make([]time.Duration, 0, rounds)
	for i := 0; i < rounds+100; i++ {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if i >= 100 { // the first hundred warm up
			lat = append(lat, time.Since(start))
		}
	}
	return sortDurations(lat)
}

// roundTrips times 1,000 calls of fn after 100 to warm up, sorted.
func roundTrips(t *testing.T, fn func() error) []time.Duration {
	var lat []time.Duration
	for i := 0; i < 1100; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		if i >= 100 {
			lat = append(lat, time.Since(start))
		}
	}
	return sortDurations(lat)
}

func sortDurations(lat []time.Duration) []time.Duration {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

func pct(lat []time.Duration, p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }

func rssKiB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestBenchConcurrentConnections opens 1,000 connections at once through
// pamd, each moving busyRounds echoes of busyChunk bytes, and measures what
// each of pamd's three processes holds per connection once all are open
// and have moved their data.
func TestBenchConcurrentConnections(t *testing.T) {
	benchEnabled(t)
	e := newEnv(t)
	c := e.tcpThrough("echo", startHelper(t, "echo"))
	addr := c.addr()
	const n = 1000
	roles := []struct {
		name string
		pid  int
	}{{"connect", c.proc.cmd.Process.Pid}, {"server", e.server.cmd.Process.Pid}, {"gateway", e.gateway.cmd.Process.Pid}}
	// One connection first, so the baseline holds the tunnels' fixed costs.
	transfer(t, addr, 1024)
	time.Sleep(200 * time.Millisecond)
	before := make([]int64, len(roles))
	for i, r := range roles {
		before[i] = rssKiB(t, r.pid)
	}

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err == nil {
				conns[i] = conn
				err = busyEcho(conn, i)
			}
			if err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	took := time.Since(start)
	failed := 0
	for err := range errs {
		if failed < 5 {
			t.Error(err)
		}
		failed++
	}
	var per []string
	for i, r := range roles {
		after := rssKiB(t, r.pid)
		per = append(per, fmt.Sprintf("%s %.1f KiB (RSS %d→%d KiB)", r.name, float64(after-before[i])/n, before[i], after))
	}
	for _, conn := range conns {
		if conn != nil {
			conn.Close()
		}
	}
	report(t, "concurrency", fmt.Sprintf("%d concurrent connections each echoing %d x %d KiB: %d correct, all done after %s; memory per connection (target <= 64 KiB): %s",
		n, busyRounds, busyChunk>>10, n-failed, took.Round(time.Millisecond), strings.Join(per, ", ")))
}

const (
	busyRounds = 4
	busyChunk  = 16 << 10
)

// busyEcho sends busyRounds chunks of busyChunk bytes, each numbered by
// the connection and round, and checks each echo.
func busyEcho(conn net.Conn, id int) error {
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	msg, got := make([]byte, busyChunk), make([]byte, busyChunk)
	for round := 0; round < busyRounds; round++ {
		for i := range msg {
			msg[i] = byte(i*7 + id + round)
		}
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("round %d: the echo differs", round)
		}
	}
	return nil
}

// report prints a benchmark's figures where go test shows them and, with
// PAMD_BENCH_OUT, appends them to a file for the summary.
func report(t *testing.T, name, line string) {
	t.Logf("%s: %s", name, line)
	fmt.Printf("BENCH %s: %s\n", name, line)
	if f := os.Getenv("PAMD_BENCH_OUT"); f != "" {
		if out, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(out, "%s: %s\n", name, line)
			out.Close()
		}
	}
}
