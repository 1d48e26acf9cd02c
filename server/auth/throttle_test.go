package auth

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

func TestThrottleBacksOffAndForgives(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	th := newThrottle()
	th.now = func() time.Time { return now }
	p := policy{free: 3, first: time.Second, max: 10 * time.Second}
	for i := 0; i < 3; i++ {
		if w := th.wait("k", p); w != 0 {
			t.Fatalf("failure %d already waits %v", i, w)
		}
		th.fail("k")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := th.wait("k", p); got != w {
			t.Fatalf("after %d failures: wait %v, want %v", 3+i, got, w)
		}
		th.fail("k")
	}
	if th.wait("other", p) != 0 {
		t.Fatal("another key waits too")
	}
	now = now.Add(11 * time.Second)
	if th.wait("k", p) != 0 {
		t.Fatal("still waiting after the longest wait passed")
	}
	th.succeed("k")
	th.fail("k")
	if th.wait("k", p) != 0 {
		t.Fatal("a success did not reset the count")
	}
	// A flood of keys stays bounded.
	th.maxKeys = 1000
	for i := 0; i < 5000; i++ {
		th.fail(strings.Repeat("x", i%50) + string(rune('a'+i%26)) + time.Duration(i).String())
		now = now.Add(time.Millisecond)
	}
	if n := len(th.keys); n > 1000 {
		t.Fatalf("%d keys kept, want at most 1000", n)
	}
}

// No argon2 runs inside a store write: with every hash slot taken, a
// login waits for a slot while the store keeps taking writes.
func TestLoginHashesOutsideTheStoreTransaction(t *testing.T) {
	ts := newTestService(t)
	for i := 0; i < cap(ts.slots); i++ {
		ts.slots <- struct{}{}
	}
	done := make(chan error, 1)
	go func() {
		_, err := ts.Login(context.Background(), "admin", testAdminPassword, "", "10.0.0.1")
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // the login is now waiting for a slot
	wrote := make(chan error, 1)
	go func() {
		wrote <- ts.st.Update(func(tx *store.Tx) error { return tx.PutSecret("unit-probe", []byte("x")) })
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a store write waited for a login's password hash")
	}
	for i := 0; i < cap(ts.slots); i++ {
		<-ts.slots
	}
	if err := <-done; err != nil {
		t.Fatalf("login after the slots freed: %v", err)
	}
	// A flood beyond the slots queues and then is told the server is busy,
	// instead of running every hash at once.
	for i := 0; i < cap(ts.slots); i++ {
		ts.slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ts.Login(ctx, "admin", testAdminPassword, "", "10.0.0.2"); err == nil {
		t.Fatal("a login ran its hash with every slot taken")
	}
	for i := 0; i < cap(ts.slots); i++ {
		<-ts.slots
	}
}

// Concurrent logins never run more hashes than there are slots.
func TestLoginHashSlotsCapConcurrency(t *testing.T) {
	ts := newTestService(t)
	var wg sync.WaitGroup
	peak := 0
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
				peak = max(peak, len(ts.slots))
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := 0; i < 4*cap(ts.slots); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ts.Login(context.Background(), "admin", "wrong-password-x", "", "10.0.1."+string(rune('0'+i%10)))
		}(i)
	}
	wg.Wait()
	close(stop)
	<-sampled
	if peak > cap(ts.slots) || peak == 0 {
		t.Fatalf("peak of %d hashes at once, slots %d", peak, cap(ts.slots))
	}
}

const testAdminPassword = "admin-unit-password-1"

// newTestService is authentication on a new store whose admin has
// testAdminPassword.
func newTestService(t *testing.T) *Service {
	t.Helper()
	st := storetest.Open(t)
	s, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{DataDir: t.TempDir(), AdminPassword: testAdminPassword, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
