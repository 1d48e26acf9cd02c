package procs

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestRunFollowsTheLoad drives the loop with a CPU clock and ticks of the
// test's own: a second of one busy core adds a thread, a long idle spell
// takes it back.
func TestRunFollowsTheLoad(t *testing.T) {
	var used time.Duration
	at := time.Now()
	ticks := make(chan time.Time)
	readings := make(chan time.Duration) // the loop's CPU clock, read once per tick
	sets := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, &policy{max: 2}, func() time.Duration { return <-readings }, ticks, func(n int) { sets <- n })
	}()
	readings <- 0
	step := func(cores float64) {
		at = at.Add(tick)
		used += time.Duration(cores * float64(tick))
		ticks <- at
		readings <- used
	}
	for range 5 {
		step(1)
	}
	if n := <-sets; n != 2 {
		t.Fatalf("busy: set %d, want 2", n)
	}
	for range idleTicksToShrink + 1 {
		step(0.05)
	}
	if n := <-sets; n != 1 {
		t.Fatalf("idle: set %d, want 1", n)
	}
	cancel()
	<-done
	if len(sets) != 0 {
		t.Fatalf("unexpected changes: %d more", len(sets))
	}
}

// waitIdle waits until no Adapt loop runs in the test binary.
func waitIdle(t *testing.T) {
	t.Helper()
	adapting.Lock()
	adapting.Unlock()
}

func TestAdaptStartsOnOneThreadAndRestores(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // an empty value is not the operator's choice
	waitIdle(t)
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if def < 2 {
		t.Skip("one CPU: nothing to adapt")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Adapt(ctx, nil)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("after Adapt: GOMAXPROCS %d, want 1", n)
	}
	// A second caller starts no loop of its own: ending its context
	// restores nothing.
	ctx2, cancel2 := context.WithCancel(context.Background())
	Adapt(ctx2, nil)
	cancel2()
	time.Sleep(3 * tick)
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Fatalf("a second Adapt's context ended and GOMAXPROCS went to %d", n)
	}
	cancel()
	waitIdle(t)
	if n := runtime.GOMAXPROCS(0); n != def {
		t.Fatalf("GOMAXPROCS %d after the context ended, want the runtime's default %d back", n, def)
	}
}

func TestAdaptLeavesTheOperatorsChoice(t *testing.T) {
	waitIdle(t) // so that only the environment can stop Adapt
	t.Setenv("GOMAXPROCS", "2")
	before := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Adapt(ctx, nil)
	if n := runtime.GOMAXPROCS(0); n != before {
		t.Fatalf("GOMAXPROCS set in the environment, yet Adapt moved it from %d to %d", before, n)
	}
}

func TestCPUTimeCountsWork(t *testing.T) {
	start := cpuTime()
	x := 0
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		x++
	}
	if d := cpuTime() - start; d <= 0 {
		t.Fatalf("50 ms of work moved the CPU time by %v (%d)", d, x)
	}
}
