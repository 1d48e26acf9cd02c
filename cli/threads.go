package cli

import (
	"os"
	"runtime"
)

// clientThreads runs the client end of a tunnel (pamd connect, pamd ssh)
// on one scheduler thread, as OpenSSH's ssh runs on one, unless GOMAXPROCS
// is set. It serves one person's connections, and with an idle second
// thread Go wakes that thread for every frame handed between yamux and the
// relay: on the e2e bench's echo that cost pamd connect 30% more CPU per
// round trip and twice the context switches (148-167 µs and 8.5-8.9
// switches per echo, against 103-114 µs and 4.7 on one thread), with bulk
// transfers no slower. Blocking system calls still run on threads of
// their own.
func clientThreads() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
