package e2e

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBenchIdleConnections holds 10,000 and then 15,000 connections open
// at once through one pamd connect (the machine allows 20,000 open files
// a process), each echoing once as it opens and once more when all are
// open, and measures what each of pamd's processes holds per connection.
func TestBenchIdleConnections(t *testing.T) {
	benchEnabled(t)
	sizes := []int{10000, 15000}
	if quick() {
		sizes = []int{2000}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(sizes[len(sizes)-1] + 1000); lim.Cur < need {
		t.Fatalf("this process may open %d files; %d idle connections need %d", lim.Cur, sizes[len(sizes)-1], need)
	}
	e := newEnv(t)
	c := e.tcpThrough("idle", startHelper(t, "idle-echo"))
	addr := c.addr()
	roles := []struct {
		name string
		pid  int
	}{{"connect", c.proc.cmd.Process.Pid}, {"server", e.server.cmd.Process.Pid}, {"gateway", e.gateway.cmd.Process.Pid}}
	// One baseline for every size, with the tunnels' fixed costs in it: Go
	// keeps the heap a round grew for the next, so a later round measured
	// from its own start would look cheaper than it is.
	transfer(t, addr, 1024)
	before := make([]int64, len(roles))
	for i, r := range roles {
		before[i] = rssKiB(t, r.pid)
	}
	for _, n := range sizes {
		time.Sleep(500 * time.Millisecond) // the last round's connections are gone
		start := time.Now()
		conns, err := openEchoing(addr, n)
		opened := time.Since(start)
		if err == nil {
			err = echoAll(conns)
		}
		var per []string
		for i, r := range roles {
			after := rssKiB(t, r.pid)
			per = append(per, fmt.Sprintf("%s %.1f KiB (RSS %d→%d KiB)", r.name, float64(after-before[i])/float64(n), before[i], after))
		}
		for _, conn := range conns {
			conn.Close()
		}
		if err != nil {
			t.Fatalf("%d idle connections: %v", n, err)
		}
		report(t, "idle", fmt.Sprintf("%d connections held at once through one pamd connect, each echoing when opened and again when all were open: all held; opened in %s; memory per connection: %s",
			n, opened.Round(time.Millisecond), strings.Join(per, ", ")))
	}
}

// openEchoing opens n connections to an echo server, 64 at a time, each
// checked with one echo, and returns them open.
func openEchoing(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
				if err == nil {
					conns[i] = conn
					err = echoNamed(conn, i)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	var open []net.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, first
}

// echoAll echoes once more on every connection, 64 at a time.
func echoAll(conns []net.Conn) error {
	errs := make(chan error, len(conns))
	sem := make(chan struct{}, 64)
	for i, c := range conns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if err := echoNamed(c, i+1<<20); err != nil {
				errs <- fmt.Errorf("connection %d, second echo: %w", i, err)
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errs)
	return <-errs // nil when none failed
}

// echoNamed sends a message naming the connection and checks its echo.
func echoNamed(c net.Conn, id int) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte(fmt.Sprintf("idle connection %08d", id))
	got := make([]byte, len(msg))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}
