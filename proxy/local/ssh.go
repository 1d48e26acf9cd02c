package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/pamd/pamd/protocol/printable"
)

// SSHConfig is what pamd ssh needs for one shell or command.
type SSHConfig struct {
	Tunnel  *Tunnel
	HostKey string // pamd's host key for the resource, authorized_keys form
	User    string
	Command []string // empty: an interactive shell
	Stdin   *os.File
	Stdout  io.Writer
	Stderr  io.Writer
}

// ErrNoExitStatus means the connection ended without the remote saying how
// the command ended (for example when the session was cut).
var ErrNoExitStatus = errors.New("the connection closed without an exit status")

// RunSSH runs a shell or command through the tunnel and returns the remote
// exit status. With a terminal on stdin a shell gets a pty in raw mode, and
// window size changes are passed on.
func RunSSH(ctx context.Context, cfg SSHConfig) (int, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
	if err != nil {
		return 0, fmt.Errorf("the server sent no usable host key for this resource: %w", err)
	}
	nc, err := cfg.Tunnel.Open()
	if err != nil {
		return 0, err
	}
	hostKeyRefused := false // the gateway's banner said the target's host key is not the pinned one
	cc, chans, reqs, err := ssh.NewClientConn(nc, "pamd", &ssh.ClientConfig{
		User:            cfg.User,
		HostKeyCallback: ssh.FixedHostKey(key),
		BannerCallback: func(msg string) error { // pamd explains target failures in a banner
			hostKeyRefused = hostKeyRefused || strings.Contains(msg, "host key mismatch")
			// Line by line, escaped: the text can quote the target.
			for _, line := range strings.Split(strings.TrimSuffix(msg, "\n"), "\n") {
				fmt.Fprintln(cfg.Stderr, printable.Escape(strings.TrimSuffix(line, "\r")))
			}
			return nil
		},
		ClientVersion: "SSH-2.0-pamd",
	})
	if err != nil {
		nc.Close()
		switch {
		case strings.Contains(err.Error(), "unable to authenticate") && hostKeyRefused:
			return 0, errors.New("pamd refused the target's host key: it is not the pinned one (see above)")
		case strings.Contains(err.Error(), "unable to authenticate"):
			return 0, errors.New("the target refused the login (see above)")
		}
		return 0, fmt.Errorf("SSH handshake with pamd failed: %w", err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return 0, fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr

	fd := int(cfg.Stdin.Fd())
	if len(cfg.Command) == 0 && term.IsTerminal(fd) {
		w, h, err := term.GetSize(fd)
		if err != nil {
			w, h = 80, 24
		}
		termName := os.Getenv("TERM")
		if termName == "" {
			termName = "xterm-256color"
		}
		if err := sess.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return 0, fmt.Errorf("request a terminal: %w", err)
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return 0, fmt.Errorf("raw terminal: %w", err)
		}
		defer term.Restore(fd, old)
		stop := watchResize(fd, func(w, h int) { sess.WindowChange(h, w) })
		defer stop()
	}
	if len(cfg.Command) > 0 {
		err = sess.Start(strings.Join(cfg.Command, " "))
	} else {
		err = sess.Shell()
	}
	if err != nil {
		return 0, fmt.Errorf("start: %w", err)
	}
	waited := make(chan struct{})
	defer close(waited)
	go func() {
		select {
		case <-ctx.Done():
			sess.Signal(ssh.SIGINT)
			client.Close()
		case <-waited:
		}
	}()
	err = sess.Wait()
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exit):
		if exit.Signal() != "" && exit.ExitStatus() == 0 {
			return 128 + 15, nil
		}
		return exit.ExitStatus(), nil
	case errors.As(err, &missing), errors.Is(err, io.EOF):
		return 255, ErrNoExitStatus
	}
	return 255, err
}
