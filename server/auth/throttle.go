package auth

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/pamd/pamd/server/api"
)

// throttle slows down guessing without locking anyone out: failures are
// counted per key (a source address, a user name from one source, an API
// token), and a key that failed too often must wait before its next try,
// the wait doubling with each further failure up to a ceiling. A stranger
// guessing an admin's password from their own address slows down only
// themselves: the admin's address has its own count.
//
// The counts live in memory: a restart forgets them, which costs an
// attacker a restart of the server for each ceiling's worth of guesses.
type throttle struct {
	mu      sync.Mutex
	keys    map[string]*failures
	now     func() time.Time
	maxKeys int
}

type failures struct {
	n    int       // failures in a row
	last time.Time // of the latest failure
}

// A policy says how many failures a key may have before it waits, and the
// first and longest wait.
type policy struct {
	free       int
	first, max time.Duration
}

var (
	// A user name from one address: five tries, then 1 s, 2 s, … up to 15 min.
	perNameAndSource = policy{free: 5, first: time.Second, max: 15 * time.Minute}
	// One address over all names: enough for a shared NAT, not for a sweep.
	perSource = policy{free: 20, first: time.Second, max: 15 * time.Minute}
	// Codes asked for at access time, per user and per token.
	perMFA = policy{free: 5, first: 2 * time.Second, max: 15 * time.Minute}
)

func newThrottle() *throttle {
	return &throttle{keys: map[string]*failures{}, now: time.Now, maxKeys: 100_000}
}

// wait returns how long the key must still wait under p (0: it may try).
func (t *throttle) wait(key string, p policy) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil || f.n < p.free {
		return 0
	}
	d := p.first << min(f.n-p.free, 20)
	if d > p.max || d <= 0 {
		d = p.max
	}
	if left := f.last.Add(d).Sub(t.now()); left > 0 {
		return left
	}
	return 0
}

func (t *throttle) fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.keys[key]
	if f == nil {
		if len(t.keys) >= t.maxKeys {
			t.sweepLocked()
		}
		f = &failures{}
		t.keys[key] = f
	}
	f.n++
	f.last = t.now()
}

func (t *throttle) succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

// sweepLocked forgets keys idle longer than any wait, and if that frees
// nothing, the oldest half: memory stays bounded under a flood of sources.
func (t *throttle) sweepLocked() {
	now := t.now()
	for k, f := range t.keys {
		if now.Sub(f.last) > 2*perNameAndSource.max {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < t.maxKeys {
		return
	}
	times := make([]time.Time, 0, len(t.keys))
	for _, f := range t.keys {
		times = append(times, f.last)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for k, f := range t.keys {
		if !f.last.After(cut) {
			delete(t.keys, k)
		}
	}
}

// tooMany is the answer to a throttled caller.
func tooMany(what string, wait time.Duration) *api.Error {
	secs := int(wait.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeThrottled, RetryAfter: secs,
		Message: fmt.Sprintf("too many failed %s: try again in %s", what, strconv.Itoa(secs)+"s")}
}

// hashSlots caps the argon2 computations running at once: each takes
// 19 MiB and a core for tens of milliseconds, so a flood of logins must
// queue here instead of exhausting memory.
type hashSlots chan struct{}

func newHashSlots() hashSlots { return make(hashSlots, max(2, runtime.GOMAXPROCS(0))) }

// acquire waits for a slot for at most a few seconds.
func (h hashSlots) acquire(ctx context.Context) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case h <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeThrottled, RetryAfter: 2,
			Message: "the server is busy checking other logins: try again in a moment"}
	}
}

func (h hashSlots) release() { <-h }
