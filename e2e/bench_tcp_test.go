package e2e

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchTCP runs the tcp workloads on five paths in one run and prints
// one table: direct to the target processes, three plain relays (what
// pamd's topology costs without crypto), three relays with TLS 1.3 on the
// middle legs (its floor with the crypto pamd does), ssh -N -L through an
// OpenSSH sshd of the bench's own, and pamd. Bulk transfers are checked by CRC-32, echoes byte for byte.
// The paths take turns, so that the load of a shared machine falls on all
// of them; the CPU time their relaying processes spent per GiB says what
// the machine's load cannot blur.
func TestBenchTCP(t *testing.T) {
	benchEnabled(t)
	direct := benchTargets{source: startHelper(t, "source"), digest: startHelper(t, "digest"), echo: startHelper(t, "echo")}
	relays := benchTargets{source: plainChain(t, direct.source), digest: plainChain(t, direct.digest), echo: plainChain(t, direct.echo)}
	var tlsRelays benchTargets
	var tlsPIDs []int
	tlsChainTo := func(target string) string {
		addr, pids := tlsChain(t, target)
		tlsPIDs = append(tlsPIDs, pids...)
		return addr
	}
	tlsRelays.source, tlsRelays.digest, tlsRelays.echo = tlsChainTo(direct.source), tlsChainTo(direct.digest), tlsChainTo(direct.echo)
	fw := sshForward(t, direct.source, direct.digest, direct.echo)
	e := newEnv(t)
	conns := []*connection{e.tcpThrough("source", direct.source), e.tcpThrough("digest", direct.digest), e.tcpThrough("echo", direct.echo)}
	paths := [numPaths]*benchPath{
		pathDirect: {benchTargets: direct},
		pathPlain:  {benchTargets: relays},
		pathTLS:    {benchTargets: tlsRelays, relaying: func() []int { return tlsPIDs }},
		pathSSH:    {benchTargets: benchTargets{source: fw.locals[0], digest: fw.locals[1], echo: fw.locals[2]}, relaying: fw.pids},
		pathPamd:   {benchTargets: benchTargets{source: conns[0].addr(), digest: conns[1].addr(), echo: conns[2].addr()}, relaying: e.pids(conns)},
	}

	size, rounds := int64(1<<30), 5000
	if quick() {
		size, rounds = 256<<20, 2000
	}
	const conns200 = 200
	for _, p := range paths { // warm every path up
		download(t, p.source, 16<<20)
		upload(t, p.digest, 16<<20)
	}
	var down, up, echo, fresh [numPaths][]time.Duration
	var downCPU, upCPU, echoCPU, freshCPU [numPaths]time.Duration
	for turn := 0; turn < 2; turn++ {
		for i, p := range paths {
			down[i] = append(down[i], p.timed(&downCPU[i], func() time.Duration { return download(t, p.source, size) }))
		}
		for i, p := range paths {
			up[i] = append(up[i], p.timed(&upCPU[i], func() time.Duration { return upload(t, p.digest, size) }))
		}
	}
	for i, p := range paths {
		p.timed(&echoCPU[i], func() time.Duration { echo[i] = pingPong(t, p.echo, rounds); return 0 })
	}
	for i, p := range paths {
		p.timed(&freshCPU[i], func() time.Duration { fresh[i] = newConnections(t, p.echo, conns200); return 0 })
	}
	mib := fmt.Sprintf("%d MiB", size>>20)
	tab := benchTable{t: t}
	tab.throughput("download "+mib, size, down, 1.5)
	tab.throughput("upload "+mib, size, up, 1.5)
	tab.cpu("download CPU of the relaying processes", 2*size, downCPU)
	tab.cpu("upload CPU of the relaying processes", 2*size, upCPU)
	tab.latency(fmt.Sprintf("echo 32 B x%d p50", rounds), echo, .5, 1.0)
	tab.latency(fmt.Sprintf("echo 32 B x%d p99", rounds), echo, .99, 0)
	tab.latency(fmt.Sprintf("new connection x%d p50", conns200), fresh, .5, 0)
	tab.latency(fmt.Sprintf("new connection x%d p99", conns200), fresh, .99, 0)
	tab.cpuPer("echo CPU of the relaying processes", rounds+100, echoCPU) // pingPong warms up with 100 more
	tab.cpuPer("new connection CPU of the relaying processes", conns200, freshCPU)
	tab.print()
}

// benchPath is one way to the targets.
type benchPath struct {
	benchTargets
	// relaying lists the processes between client and target whose CPU
	// time the bench counts; nil when it does not.
	relaying func() []int
}

// timed runs a transfer and adds the CPU time the path's relaying
// processes spent meanwhile to cpu; it returns the transfer's time.
func (p *benchPath) timed(cpu *time.Duration, transfer func() time.Duration) time.Duration {
	if p.relaying == nil {
		return transfer()
	}
	pids := p.relaying()
	before := cpuTime(pids)
	d := transfer()
	*cpu += cpuTime(pids) - before
	return d
}

// cpuTime is the CPU time the processes' threads have run, from the
// scheduler's own count (nanoseconds, unlike the clock ticks of stat).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, f := range stats {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var ns int64
			fmt.Sscan(string(b), &ns)
			total += time.Duration(ns)
		}
	}
	return total
}

// pids are the pamd processes that relay: server, gateway and the
// connects.
func (e *env) pids(conns []*connection) func() []int {
	return func() []int {
		pids := []int{e.server.cmd.Process.Pid, e.gateway.cmd.Process.Pid}
		for _, c := range conns {
			pids = append(pids, c.proc.cmd.Process.Pid)
		}
		return pids
	}
}

// benchTargets are the addresses one path reaches the three targets at.
type benchTargets struct{ source, digest, echo string }

// tcpThrough registers target as a tcp resource and runs pamd connect for
// it.
func (e *env) tcpThrough(name, target string) *connection {
	e.t.Helper()
	host, port, _ := net.SplitHostPort(target)
	e.ok("", "resources", "add", "--type", "tcp", "--name", name, "--gateway", "gw1", "--host", host, "--port", port)
	e.ok("", "accounts", "add", name+"/any")
	return e.connect(name + "/any")
}

// The bench's own helper processes, besides helper_test.go's (which the
// test binary runs from TestMain; this runs first, at init):
//
//	source  reads an 8-byte big-endian count, sends that many bytes of the
//	        bulk stream, and closes
//	digest  reads a connection to its end, then answers its byte count (8
//	        bytes) and CRC-32 (4 bytes), big endian
func init() {
	switch kind := os.Getenv("PAMD_E2E_HELPER"); kind {
	case "source", "digest":
		serveBenchHelper(kind)
		os.Exit(0)
	}
}

func serveBenchHelper(kind string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if kind == "source" {
				var n int64
				if binary.Read(c, binary.BigEndian, &n) == nil {
					writeBulk(c, n)
				}
				return
			}
			n, sum, _ := readBulk(c)
			binary.Write(c, binary.BigEndian, struct {
				N   int64
				Sum uint32
			}{n, sum})
		}()
	}
}

// bulkBlock is the unit of the bulk stream: a fixed pattern whose first 8
// bytes number the block, so that a lost, repeated or reordered block
// changes the stream's CRC.
const bulkBlock = 256 << 10

func newBulkBlock() []byte {
	b := make([]byte, bulkBlock)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// writeBulk writes the first n bytes of the bulk stream to w and returns
// their CRC-32.
func writeBulk(w io.Writer, n int64) (uint32, error) {
	buf := newBulkBlock()
	var sum uint32
	for k := int64(0); k*bulkBlock < n; k++ {
		binary.BigEndian.PutUint64(buf, uint64(k))
		chunk := buf[:min(bulkBlock, n-k*bulkBlock)]
		sum = crc32.Update(sum, crc32.IEEETable, chunk)
		if w != nil {
			if _, err := w.Write(chunk); err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}

// readBulk reads r to its end and returns the byte count and CRC-32.
func readBulk(r io.Reader) (int64, uint32, error) {
	buf := make([]byte, bulkBlock)
	var n int64
	var sum uint32
	for {
		k, err := r.Read(buf)
		n += int64(k)
		sum = crc32.Update(sum, crc32.IEEETable, buf[:k])
		if err == io.EOF {
			return n, sum, nil
		}
		if err != nil {
			return n, sum, err
		}
	}
}

var bulkSums sync.Map // size → CRC-32 of the bulk stream's first size bytes

func bulkSum(n int64) uint32 {
	if v, ok := bulkSums.Load(n); ok {
		return v.(uint32)
	}
	sum, _ := writeBulk(nil, n)
	bulkSums.Store(n, sum)
	return sum
}

// download times receiving n bytes from a source helper at addr.
func download(t *testing.T, addr string, n int64) time.Duration {
	want := bulkSum(n)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := binary.Write(c, binary.BigEndian, n); err != nil {
		t.Fatal(err)
	}
	got, sum, err := readBulk(c)
	d := time.Since(start)
	if err != nil || got != n || sum != want {
		t.Fatalf("download from %s: %d of %d bytes, CRC %08x want %08x: %v", addr, got, n, sum, want, err)
	}
	return d
}

// upload times sending n bytes to a digest helper at addr.
func upload(t *testing.T, addr string, n int64) time.Duration {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sum, err := writeBulk(c, n)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	var got struct {
		N   int64
		Sum uint32
	}
	err = binary.Read(c, binary.BigEndian, &got)
	d := time.Since(start)
	if err != nil || got.N != n || got.Sum != sum {
		t.Fatalf("upload to %s: the sink got %d of %d bytes, CRC %08x want %08x: %v", addr, got.N, n, got.Sum, sum, err)
	}
	return d
}

// newConnections times n connections one after the other, each opened,
// used for one 32-byte echo and closed; sorted.
func newConnections(t *testing.T, addr string, n int) []time.Duration {
	msg := []byte("0123456789abcdef0123456789abcdef")
	got := make([]byte, len(msg))
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("new connection %d to %s: echo %q: %v", i, addr, got, err)
		}
		c.Close()
		lat = append(lat, time.Since(start))
	}
	return sortDurations(lat)
}

// benchTable prints the tcp workloads, one row each, with the five paths
// and pamd's ratios against ssh -L, the TLS relays and direct.
type benchTable struct {
	t    *testing.T
	rows [][]string
}

// benchPaths name the paths in the order TestBenchTCP measures them. The
// TLS relays are the floor of pamd's topology: what three processes
// relaying with TLS on the middle legs cost with nothing else.
var benchPaths = [numPaths]string{pathDirect: "direct", pathPlain: "3 plain relays", pathTLS: "3 TLS relays", pathSSH: "ssh -L", pathPamd: "pamd"}

const (
	pathDirect = iota
	pathPlain
	pathTLS
	pathSSH
	pathPamd
	numPaths
)

// throughput adds a row of the best of each path's transfer times of size
// bytes, as MiB/s; the
// ratios are pamd's rate over the others' (higher is better). target, if
// not 0, is the least pamd/ssh -L ratio wanted.
func (b *benchTable) throughput(name string, size int64, d [numPaths][]time.Duration, target float64) {
	rate := func(i int) float64 { return float64(size) / slices.Min(d[i]).Seconds() / (1 << 20) }
	row := []string{name}
	for i := range benchPaths {
		row = append(row, fmt.Sprintf("%.0f MiB/s", rate(i)))
	}
	vsSSH := rate(pathPamd) / rate(pathSSH)
	row = append(row, fmt.Sprintf("%.2fx", vsSSH), fmt.Sprintf("%.2fx", rate(pathPamd)/rate(pathTLS)), fmt.Sprintf("%.2fx", rate(pathPamd)/rate(pathDirect)), targetNote(">=", target))
	b.rows = append(b.rows, row)
	if target > 0 && vsSSH < target {
		guard(b.t, "%s: pamd %.2fx ssh -L, target >= %.1f", name, vsSSH, target)
	}
}

// cpu adds a row of the CPU time each path's relaying processes spent per
// GiB moved (n bytes in all); the ratios are pamd's over the others'
// (lower is better).
func (b *benchTable) cpu(name string, n int64, cpu [numPaths]time.Duration) {
	perGiB := func(i int) float64 { return cpu[i].Seconds() * 1000 / (float64(n) / (1 << 30)) }
	row := []string{name}
	for i := range benchPaths {
		if cpu[i] == 0 {
			row = append(row, "-")
			continue
		}
		row = append(row, fmt.Sprintf("%.0f ms/GiB", perGiB(i)))
	}
	b.rows = append(b.rows, append(row, fmt.Sprintf("%.2fx", perGiB(pathPamd)/perGiB(pathSSH)), fmt.Sprintf("%.2fx", perGiB(pathPamd)/perGiB(pathTLS)), "", ""))
}

// cpuPer adds a row of the CPU time each path's relaying processes spent
// per operation (n in all). Unlike latencies, it hardly moves with what
// else the machine runs, so it shows where a round trip's cost is.
func (b *benchTable) cpuPer(name string, n int, cpu [numPaths]time.Duration) {
	per := func(i int) float64 { return float64(cpu[i].Microseconds()) / float64(n) }
	row := []string{name}
	for i := range benchPaths {
		if cpu[i] == 0 {
			row = append(row, "-")
			continue
		}
		row = append(row, fmt.Sprintf("%.0fµs/op", per(i)))
	}
	b.rows = append(b.rows, append(row, fmt.Sprintf("%.2fx", per(pathPamd)/per(pathSSH)), fmt.Sprintf("%.2fx", per(pathPamd)/per(pathTLS)), "", ""))
}

// latency adds a row of each path's percentile p; the ratios are pamd's
// latency over the others' (lower is better). target, if not 0, is the
// most pamd/ssh -L ratio wanted.
func (b *benchTable) latency(name string, lat [numPaths][]time.Duration, p, target float64) {
	row := []string{name}
	for i := range benchPaths {
		row = append(row, us(pct(lat[i], p)))
	}
	of := func(i int) float64 { return float64(pct(lat[pathPamd], p)) / float64(pct(lat[i], p)) }
	row = append(row, fmt.Sprintf("%.2fx", of(pathSSH)), fmt.Sprintf("%.2fx", of(pathTLS)), fmt.Sprintf("%.2fx", of(pathDirect)), targetNote("<=", target))
	b.rows = append(b.rows, row)
	if target > 0 && of(pathSSH) > target {
		guard(b.t, "%s: pamd %.2fx ssh -L, target <= %.1f", name, of(pathSSH), target)
	}
}

func targetNote(op string, target float64) string {
	if target == 0 {
		return ""
	}
	return fmt.Sprintf("target %s %.1f vs ssh -L", op, target)
}

func (b *benchTable) print() {
	head := append(append([]string{"tcp workload"}, benchPaths[:]...), "pamd/ssh -L", "pamd/TLS relays", "pamd/direct", "")
	rows := append([][]string{head}, b.rows...)
	width := make([]int, len(head))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			fmt.Fprintf(&line, "| %-*s ", width[i], c)
		}
		report(b.t, "tcp", strings.TrimSpace(line.String()))
	}
	report(b.t, "tcp", "rates: pamd's over the other (higher is better); latencies: pamd's over the other (lower is better)")
}

// forward is a running ssh -L: its local addresses, in the targets' order,
// and its processes (ssh and the sshd's).
type forward struct {
	locals []string
	pids   func() []int
}

// sshForward runs ssh -N with one -L per target through an OpenSSH sshd of
// its own.
func sshForward(t *testing.T, targets ...string) forward {
	s, key := startUserSSHD(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.addr)
	args := []string{"-N", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "-i", key, "-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes", "-p", port}
	var locals []string
	for _, target := range targets {
		local := freePort(t)
		locals = append(locals, local)
		args = append(args, "-L", local+":"+target)
	}
	cmd := exec.Command("ssh", append(args, me.Username+"@"+host)...)
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	// ssh listens once it has logged in; a probe connection reaches the
	// target, which sees it close at once.
	deadline := time.Now().Add(10 * time.Second)
	for _, local := range locals {
		for {
			c, err := net.Dial("tcp", local)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("ssh -L exited: %s", stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh -L did not listen on %s: %s", local, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	sshdPid := 0
	if b, err := os.ReadFile(s.pidFile); err == nil {
		fmt.Sscan(string(b), &sshdPid)
	}
	return forward{locals: locals, pids: func() []int { return append(descendants(sshdPid), cmd.Process.Pid) }}
}

// descendants are root's child processes, theirs, and so on.
func descendants(root int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		var pid, ppid int
		var state string
		fmt.Sscan(string(b), &pid)
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			fmt.Sscan(string(b[i+1:]), &state, &ppid)
		}
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	for queue := children[root]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// startUserSSHD starts an OpenSSH sshd for the user running the tests: no
// system user, password or PAM; its own host key, and an authorized keys
// file of its own with one key, whose private key file it returns. It
// needs no root, though as root it uses sshd's privilege separation
// directory.
func startUserSSHD(t *testing.T) (*sshd, string) {
	_, err := os.Stat("/usr/sbin/sshd")
	needPeers(t, "OpenSSH sshd (/usr/sbin/sshd)", err == nil)
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755)
	}
	s := &sshd{t: t, dir: t.TempDir(), addr: freePort(t)}
	priv, pub := newKey(t, "")
	key := filepath.Join(s.dir, "id")
	os.WriteFile(key, priv, 0o600)
	keys := filepath.Join(s.dir, "authorized_keys")
	os.WriteFile(keys, []byte(pub), 0o600)
	s.newHostKey()
	s.config, s.pidFile, s.log = filepath.Join(s.dir, "sshd_config"), filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "sshd.log")
	host, port, _ := net.SplitHostPort(s.addr)
	// StrictModes would refuse keys under the world-writable /tmp.
	cfg := fmt.Sprintf("Port %s\nListenAddress %s\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowTcpForwarding local\nLogLevel ERROR\n",
		port, host, filepath.Join(s.dir, "hostkey"), s.pidFile, keys)
	os.WriteFile(s.config, []byte(cfg), 0o600)
	s.start()
	t.Cleanup(s.stop)
	return s, key
}
