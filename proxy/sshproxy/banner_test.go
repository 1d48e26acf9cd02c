package sshproxy

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestRefusalBannerEscapesTargetText: the banner that tells the user's
// client why the target cannot be used quotes the target's error text; a
// target that puts escape sequences or line breaks in it must not reach
// the user's terminal with them.
func TestRefusalBannerEscapesTargetText(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	host, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	// TCP, not net.Pipe: both ends send their version line at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if server, err := ln.Accept(); err == nil {
			refuseClient(server, host, errors.New("the target said: \x1b[2K\rforged\nline\u009b"))
			server.Close()
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	banner := make(chan string, 1)
	client.SetDeadline(time.Now().Add(10 * time.Second))
	ssh.NewClientConn(client, "pamd", &ssh.ClientConfig{
		User:            "u",
		Auth:            []ssh.AuthMethod{ssh.Password("x")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		BannerCallback:  func(msg string) error { banner <- msg; return nil },
	})
	select {
	case got := <-banner:
		want := `pamd: the target said: \x1b[2K\rforged\nline\u009b` + "\n"
		if got != want {
			t.Fatalf("banner %q, want %q", got, want)
		}
		if strings.ContainsAny(got[:len(got)-1], "\x1b\r\n\u009b") {
			t.Fatalf("raw control characters in the banner %q", got)
		}
	default:
		t.Fatal("no banner")
	}
}
