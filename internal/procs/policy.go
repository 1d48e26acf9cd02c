package procs

// policy decides the thread count from samples of the process's CPU use,
// one per tick. It holds no clock of its own, so tests feed it samples.
type policy struct {
	max int // the most threads to take: the runtime's default at start

	busyTicks int // consecutive ticks that kept every thread busy
	idleTicks int // consecutive ticks that would have fit in half the threads
}

const (
	// busyShare of the threads' time in use counts as busy. One thread
	// never shows quite 1.0: the runtime's own work and the wakeups around
	// blocking calls leave gaps.
	busyShare = 0.8
	// idleShare of the threads' time or less counts as idle: half the
	// threads would carry the load at half their capacity, well below
	// busyShare, so the count does not swing back at once.
	idleShare = 0.25
	// busyTicksToGrow and idleTicksToShrink: a burst must last before
	// threads are added, and a lull longer before they are taken back.
	busyTicksToGrow   = 2
	idleTicksToShrink = 25
)

// next returns the thread count after a tick in which the process used
// cores of CPU (CPU time over wall time) while running on cur threads.
func (p *policy) next(cur int, cores float64) int {
	switch {
	case cores >= busyShare*float64(cur) && cur < p.max:
		p.idleTicks = 0
		if p.busyTicks++; p.busyTicks >= busyTicksToGrow {
			p.busyTicks = 0
			return min(p.max, 2*cur)
		}
	case cores <= idleShare*float64(cur) && cur > 1:
		p.busyTicks = 0
		if p.idleTicks++; p.idleTicks >= idleTicksToShrink {
			p.idleTicks = 0
			return max(1, cur/2)
		}
	default:
		p.busyTicks, p.idleTicks = 0, 0
	}
	return cur
}
