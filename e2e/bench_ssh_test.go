package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// sshBulk times OpenSSH downloading size bytes with args.
func sshBulk(t *testing.T, size int64, args ...string) time.Duration {
	cmd := exec.Command("ssh", append(args, fmt.Sprintf("head -c %d /dev/zero", size))...)
	var cw countWriter
	cmd.Stdout = &cw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil || cw.n != size {
		t.Fatalf("ssh %v: %v, %d of %d bytes\n%s", args, err, cw.n, size, stderr.String())
	}
	return time.Since(start)
}

func TestBenchSSH(t *testing.T) {
	benchEnabled(t)
	target := startSSHD(t)
	jump := startSSHD(t) // a second sshd: what an admin would hop through with ssh -J
	e := newEnv(t)
	e.addSSH(target, "box")
	c := e.connect("box/key")
	kh := knownHosts(t, c)
	size := int64(1 << 30)
	if quick() {
		size = 256 << 20
	}
	th, tp, _ := net.SplitHostPort(target.addr)
	jh, jp, _ := net.SplitHostPort(jump.addr)
	keyOpts := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes", "-i", target.key, "-o", "LogLevel=ERROR"}
	direct := append(append([]string{}, keyOpts...), "-p", tp, sshUser+"@"+th)
	// ssh -J does not pass command-line options to the hop; this ProxyCommand
	// is the same hop with them (ssh -W through the jump sshd).
	hop := fmt.Sprintf("ssh %s -W %%h:%%p -p %s %s@%s", strings.Join(keyOpts, " "), jp, sshUser, jh)
	viaJump := append(append([]string{}, keyOpts...), "-o", "ProxyCommand="+hop, "-p", tp, sshUser+"@"+th)
	viaPamd := sshArgs(c, kh)
	best := func(args []string) time.Duration {
		sshBulk(t, 16<<20, args...)
		return min(sshBulk(t, size, args...), sshBulk(t, size, args...))
	}
	dDirect, dJump, dPamd := best(direct), best(viaJump), best(viaPamd)
	mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / (1 << 20) }
	vsJump := dJump.Seconds() / dPamd.Seconds()
	report(t, "ssh bulk", fmt.Sprintf("%d MiB download with OpenSSH: direct %.0f MiB/s, ssh -J %.0f MiB/s, through pamd %.0f MiB/s; pamd/direct %.2f, pamd/ssh -J %.2f (target >= 0.5)",
		size>>20, mbps(dDirect), mbps(dJump), mbps(dPamd), dDirect.Seconds()/dPamd.Seconds(), vsJump))
	if vsJump < 0.5 {
		guard(t, "pamd/ssh -J throughput %.2f below 0.5", vsJump)
	}

	// Keystroke echo: one byte to a raw-mode cat on a pty, and back.
	signer, err := ssh.ParsePrivateKey(target.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	keystrokes := func(addr string, cfg *ssh.ClientConfig) []time.Duration {
		client, err := ssh.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		sess, _ := client.NewSession()
		defer sess.Close()
		sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0})
		in, _ := sess.StdinPipe()
		out, _ := sess.StdoutPipe()
		if err := sess.Start("stty raw -echo; echo ready; exec cat"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for got := ""; !strings.Contains(got, "ready"); {
			n, err := out.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += string(buf[:n])
		}
		time.Sleep(100 * time.Millisecond)
		var lat []time.Duration
		for i := 0; i < 1100; i++ {
			start := time.Now()
			in.Write([]byte{'a' + byte(i%26)})
			if _, err := io.ReadFull(out, buf[:1]); err != nil {
				t.Fatal(err)
			}
			if i >= 100 {
				lat = append(lat, time.Since(start))
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat
	}
	directCfg := &ssh.ClientConfig{User: sshUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	pamdCfg := &ssh.ClientConfig{User: sshUser, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	kd, kp := keystrokes(target.addr, directCfg), keystrokes(c.addr(), pamdCfg)
	report(t, "ssh keystroke", fmt.Sprintf("echo of one key on a pty x1000: direct p50 %s p99 %s; through pamd p50 %s p99 %s; p50 ratio %.1f",
		us(pct(kd, .5)), us(pct(kd, .99)), us(pct(kp, .5)), us(pct(kp, .99)), float64(pct(kp, .5))/float64(pct(kd, .5))))

	// 200 concurrent shells through one gateway.
	const shells = 200
	gwPid := e.gateway.cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	before := rssKiB(t, gwPid)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var clients []*ssh.Client
	failed := 0
	start := time.Now()
	sem := make(chan struct{}, 20) // sshd's MaxStartups throttles parallel handshakes
	for i := 0; i < shells; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			client, err := ssh.Dial("tcp", c.addr(), pamdCfg)
			if err == nil {
				var sess *ssh.Session
				if sess, err = client.NewSession(); err == nil {
					sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
					out, _ := sess.StdoutPipe()
					in, _ := sess.StdinPipe()
					if err = sess.Shell(); err == nil {
						fmt.Fprintf(in, "echo shell-%d-ok\n", i)
						buf := make([]byte, 4096)
						got := ""
						deadline := time.Now().Add(30 * time.Second)
						for !strings.Contains(got, fmt.Sprintf("shell-%d-ok\r\n", i)) && time.Now().Before(deadline) {
							n, rerr := out.Read(buf)
							if rerr != nil {
								break
							}
							got += string(buf[:n])
						}
						if !strings.Contains(got, fmt.Sprintf("shell-%d-ok\r\n", i)) {
							err = fmt.Errorf("shell %d did not answer", i)
						}
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if failed < 3 {
					t.Error(err)
				}
				failed++
				return
			}
			clients = append(clients, client)
		}(i)
	}
	wg.Wait()
	after := rssKiB(t, gwPid)
	report(t, "ssh shells", fmt.Sprintf("%d concurrent shells through one gateway, %d answered, all open after %s; gateway memory %.1f KiB per shell (RSS %d→%d KiB)",
		shells, shells-failed, time.Since(start).Round(time.Millisecond), float64(after-before)/shells, before, after))
	for _, cl := range clients {
		cl.Close()
	}
	_ = os.Getpid
}
