package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as small helper servers, run as separate
// processes so benchmarks compare pamd with targets that live in their own
// process, as real targets do. PAMD_E2E_HELPER selects one:
//
//	echo        echoes each connection, half-closing after the client does
//	idle-echo   echo for many connections at once: a 4 KiB buffer each and
//	            no splice(2), which would hold a pipe (two more files) for
//	            each connection and run out of files at a third of the limit
//	sink        reads a connection to its end, then answers the byte count
//	forward=A   relays each connection to A with io.Copy (a plain TCP hop)
//
// The helper prints its listen address on the first line of stdout.
func runHelper(kind string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			switch {
			case kind == "echo":
				io.CopyBuffer(c, c, make([]byte, 256<<10))
				c.(*net.TCPConn).CloseWrite()
			case kind == "idle-echo":
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 4<<10))
				c.(*net.TCPConn).CloseWrite()
			case kind == "sink":
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
				binary.Write(c, binary.BigEndian, n)
			case strings.HasPrefix(kind, "forward="):
				t, err := net.Dial("tcp", strings.TrimPrefix(kind, "forward="))
				if err != nil {
					return
				}
				defer t.Close()
				go func() { io.Copy(t, c); t.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, t)
			}
		}()
	}
}

// startHelper runs a helper process and returns its address.
func startHelper(t testing.TB, kind string) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PAMD_E2E_HELPER="+kind)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s: %v", kind, err)
	}
	return strings.TrimSpace(line)
}

// plainChain is the floor of pamd's topology: three plain TCP relays in
// their own processes (where connect, server and gateway stand), no TLS,
// no multiplexing, in front of target.
func plainChain(t testing.TB, target string) string {
	addr := target
	for i := 0; i < 3; i++ {
		addr = startHelper(t, "forward="+addr)
	}
	return addr
}

func netDial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }
