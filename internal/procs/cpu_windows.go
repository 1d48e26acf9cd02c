package procs

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time, kernel and user, of all the process's threads.
func cpuTime() time.Duration {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0
	}
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0
	}
	return hundredNanos(kernel) + hundredNanos(user)
}

// hundredNanos reads a Filetime that holds a duration, in 100 ns units.
func hundredNanos(f syscall.Filetime) time.Duration {
	return time.Duration(int64(f.HighDateTime)<<32|int64(f.LowDateTime)) * 100
}
