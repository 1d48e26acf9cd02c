// Package procs sizes the Go scheduler (GOMAXPROCS) of a pamd process to
// the load it carries. pamd relays frames between goroutines (yamux's
// reader, the relay, yamux's writer); with an idle scheduler thread the
// runtime wakes that thread for every frame handed over, and on the e2e
// bench those wake-ups were a fifth of the CPU an echo or a new connection
// cost. So a process starts on one thread and takes more only while its
// CPU use (all its threads', the runtime's own included) stays near what
// the ones it has can give, and gives them back once the load has gone.
//
// GOMAXPROCS set in the environment is the operator's choice and is left
// alone.
//
// Files: procs.go (Adapt, the loop), policy.go (the decision, pure),
// cpu_unix.go and cpu_windows.go (the process's CPU time).
package procs
