package procs

import "testing"

// feed gives the policy the same sample n times and returns the thread
// counts it answered.
func feed(p *policy, cur *int, cores float64, n int) []int {
	var got []int
	for range n {
		*cur = p.next(*cur, cores)
		got = append(got, *cur)
	}
	return got
}

func TestPolicyGrowsOnlyOnSustainedLoad(t *testing.T) {
	p, cur := &policy{max: 4}, 1
	// One busy tick between quiet ones is a spike, not a load.
	for range 10 {
		feed(p, &cur, 0.95, 1)
		feed(p, &cur, 0.1, 1)
	}
	if cur != 1 {
		t.Fatalf("spikes grew the threads to %d", cur)
	}
	if got := feed(p, &cur, 0.95, busyTicksToGrow); got[len(got)-1] != 2 {
		t.Fatalf("a sustained busy thread: %v, want 2 at the end", got)
	}
	// Two threads at 0.9 cores are not busy: half their time is free.
	feed(p, &cur, 0.9, 10)
	if cur != 2 {
		t.Fatalf("0.9 cores on 2 threads: %d threads", cur)
	}
	feed(p, &cur, 1.9, busyTicksToGrow)
	feed(p, &cur, 3.9, 10*busyTicksToGrow)
	if cur != 4 {
		t.Fatalf("growth past max or short of it: %d, max 4", cur)
	}
}

func TestPolicyShrinksAfterALongLull(t *testing.T) {
	p, cur := &policy{max: 4}, 4
	feed(p, &cur, 0.5, idleTicksToShrink-1)
	if cur != 4 {
		t.Fatalf("shrank before the lull was long enough: %d", cur)
	}
	// A tick of load restarts the count.
	feed(p, &cur, 2, 1)
	feed(p, &cur, 0.5, idleTicksToShrink-1)
	if cur != 4 {
		t.Fatalf("a busy tick did not restart the lull: %d", cur)
	}
	feed(p, &cur, 0.5, 1)
	if cur != 2 {
		t.Fatalf("after a lull: %d threads, want 2", cur)
	}
	feed(p, &cur, 0, 10*idleTicksToShrink)
	if cur != 1 {
		t.Fatalf("an idle process keeps %d threads, want 1", cur)
	}
}

// After a shrink the same load must not count as busy on the threads
// left, or the count would swing back and forth.
// And after a growth the load that caused it must not count as idle.
func TestPolicyDoesNotSwing(t *testing.T) {
	for cur := 2; cur <= 64; cur++ {
		load := idleShare * float64(cur) // the most that still shrinks
		if after := max(1, cur/2); load >= busyShare*float64(after) {
			t.Errorf("%d threads shrink to %d at %.2f cores, which is busy there", cur, after, load)
		}
	}
	for cur := 1; cur < 64; cur++ {
		load := busyShare * float64(cur) // the least that still grows
		if after := min(64, 2*cur); load <= idleShare*float64(after) {
			t.Errorf("%d threads grow to %d at %.2f cores, which is idle there", cur, after, load)
		}
	}
}
