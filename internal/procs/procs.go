package procs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"
)

// tick is how often the process's CPU use is sampled.
const tick = 200 * time.Millisecond

// adapting is held while a loop runs: one per process (pamd dev runs a
// server and a gateway in one).
var adapting sync.Mutex

// Adapt puts the process on one scheduler thread and, until ctx is done,
// doubles its threads (up to the runtime's default as it was at the call:
// a later change of the CPU count or a container's CPU limit is not
// followed meanwhile) while the load keeps them busy, and halves them each
// 5 s the load stays low; when ctx is done it hands GOMAXPROCS back to the
// runtime's own setting. It returns at once. With GOMAXPROCS set in the
// environment, or a loop already running, it does nothing. Changes are
// logged at debug level to log, which may be nil.
func Adapt(ctx context.Context, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" || !adapting.TryLock() {
		return
	}
	p := &policy{max: runtime.GOMAXPROCS(0)}
	if p.max <= 1 {
		adapting.Unlock()
		return
	}
	runtime.GOMAXPROCS(1)
	t := time.NewTicker(tick)
	go func() {
		defer adapting.Unlock()
		defer runtime.SetDefaultGOMAXPROCS()
		defer t.Stop()
		run(ctx, p, cpuTime, t.C, func(n int) {
			runtime.GOMAXPROCS(n)
			if log != nil {
				log.Debug("scheduler threads", "gomaxprocs", n)
			}
		})
	}()
}

// run feeds the policy a sample per tick until ctx is done; cpu reads the
// process's CPU time so far, set applies a new thread count.
func run(ctx context.Context, p *policy, cpu func() time.Duration, ticks <-chan time.Time, set func(int)) {
	cur := 1
	lastCPU, lastAt := cpu(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			used := cpu()
			wall := now.Sub(lastAt)
			if wall <= 0 {
				continue
			}
			cores := float64(used-lastCPU) / float64(wall)
			lastCPU, lastAt = used, now
			if n := p.next(cur, cores); n != cur {
				cur = n
				set(n)
			}
		}
	}
}
