package sshproxy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/sftp"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy/proxytest"
)

// testTarget is an in-process SSH server on loopback standing in for a
// target. Its exec runs a tiny script language: each line of the command
// is "out TEXT", "err TEXT", "cat" (stdin to stdout until EOF), "exit N"
// or "[sudo] …sftp-server" (a fake SFTP server); "shell" is "exec cat".
type testTarget struct {
	addr    string
	hostKey ssh.PublicKey
}

type targetOpts struct {
	hostKey  ssh.Signer // default: a fresh ed25519 key
	password string     // accepted password (default "pw")
	pubKey   ssh.PublicKey
	kbd      []string // keyboard-interactive questions; answered with password
	echo     bool     // those questions echo
	// PublicKeyAuthAlgorithms of the server, if set.
	pubKeyAlgos []string
	server      func(*ssh.ServerConfig)
}

func ed25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var rsaKeyOnce = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsaKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startTarget(t *testing.T, o targetOpts) *testTarget {
	t.Helper()
	if o.hostKey == nil {
		o.hostKey = ed25519Signer(t)
	}
	if o.password == "" {
		o.password = "pw"
	}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(_ ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			if o.kbd == nil && string(p) == o.password {
				return nil, nil
			}
			return nil, fmt.Errorf("password refused")
		},
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if o.pubKey != nil && string(k.Marshal()) == string(o.pubKey.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("key refused")
		},
		PublicKeyAuthAlgorithms: o.pubKeyAlgos,
	}
	if o.kbd != nil {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			echos := make([]bool, len(o.kbd))
			for i := range echos {
				echos[i] = o.echo
			}
			ans, err := ask("", "", o.kbd, echos)
			if err != nil {
				return nil, err
			}
			for _, a := range ans {
				if a != o.password {
					return nil, fmt.Errorf("wrong answer")
				}
			}
			return nil, nil
		}
	}
	cfg.AddHostKey(o.hostKey)
	if o.server != nil {
		o.server(cfg)
	}
	addr := proxytest.Serve(t, func(nc net.Conn) { serveTarget(nc, cfg) })
	return &testTarget{addr: addr, hostKey: o.hostKey.PublicKey()}
}

func serveTarget(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for r := range creqs {
				var script string
				switch r.Type {
				case "exec":
					var ex struct{ Command string }
					ssh.Unmarshal(r.Payload, &ex)
					script = ex.Command
				case "shell":
					script = "cat"
				default:
					r.Reply(r.Type == "pty-req" || r.Type == "window-change" || r.Type == "env", nil)
					continue
				}
				r.Reply(true, nil)
				status := 0
				for _, line := range strings.Split(script, "\n") {
					cmd, arg, _ := strings.Cut(strings.TrimPrefix(line, "sudo "), " ")
					if strings.HasSuffix(cmd, "sftp-server") {
						cmd = "sftp"
					}
					switch cmd {
					case "out":
						io.WriteString(ch, arg+"\n")
					case "err":
						io.WriteString(ch.Stderr(), arg+"\n")
					case "cat":
						io.Copy(ch, ch)
					case "sftp":
						fakeSFTPServer(ch)
					case "exit":
						fmt.Sscan(arg, &status)
					}
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
				return
			}
		}()
	}
}

// fakeSFTPServer answers SFTP requests as far as the tracker looks:
// VERSION to INIT, a handle to OPEN, OK to everything else, until EOF or a
// packet it cannot read.
func fakeSFTPServer(ch ssh.Channel) {
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(ch, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n < 1 || n > sftp.MaxPacket {
			return
		}
		body := make([]byte, n-1)
		if _, err := io.ReadFull(ch, body); err != nil {
			return
		}
		switch hdr[4] {
		case sftp.TypeInit:
			ch.Write(sftpPacket(sftp.TypeVersion, 3))
		case sftp.TypeOpen:
			ch.Write(sftpPacket(sftp.TypeHandle, binary.BigEndian.Uint32(body), "h1"))
		default:
			ch.Write(sftpPacket(sftp.TypeStatus, binary.BigEndian.Uint32(body), uint32(0), "", ""))
		}
	}
}

// sftpPacket encodes a packet: the type, then each field (uint32, uint64,
// string or []byte, the last two with a length).
func sftpPacket(typ byte, fields ...any) []byte {
	b := []byte{typ}
	for _, f := range fields {
		switch v := f.(type) {
		case int:
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case string:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		case []byte:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// descriptor is a password descriptor for the target.
func (tt *testTarget) descriptor(t *testing.T) *tunnel.Descriptor {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return &tunnel.Descriptor{
		SessionID: "s-test", ConnectionID: "c-test", Resource: "box", Account: "acct", Protocol: "ssh",
		Target: tt.addr, SSH: &tunnel.SSHTarget{Login: tunnel.Login{Username: "u", Password: "pw"}, Auth: "password",
			HostKey:       string(ssh.MarshalAuthorizedKey(tt.hostKey)),
			ServerHostKey: string(pem.EncodeToMemory(block)),
		},
	}
}

// recorder collects records.
type recorder struct {
	mu   sync.Mutex
	recs []tunnel.Record
}

func (r *recorder) add(rec tunnel.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) all() []tunnel.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tunnel.Record(nil), r.recs...)
}

// joined is the data of every record of one type, in order.
func (r *recorder) joined(typ string) string {
	var b strings.Builder
	for _, rec := range r.all() {
		if rec.Type == typ {
			b.WriteString(rec.Data)
		}
	}
	return b.String()
}

// proxied runs Handle for d over a loopback connection (the SSH handshake
// needs buffering that net.Pipe lacks) and returns an SSH client of it.
func proxied(t *testing.T, d *tunnel.Descriptor, rec *recorder) *ssh.Client {
	t.Helper()
	a, b := proxytest.Pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Handler{}.Handle(ctx, b, d, rec.add) }()
	t.Cleanup(func() {
		cancel()
		a.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Handle did not return")
		}
	})
	reply, err := tunnel.ReadReply(a)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Status != tunnel.StatusOK {
		t.Fatalf("target: %s", reply.Message)
	}
	cc, chans, reqs, err := ssh.NewClientConn(a, "pamd", &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}
