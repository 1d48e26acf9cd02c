package webterm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/printable"
)

// handshakeWithin bounds the SSH handshake with the gateway's handler.
const handshakeWithin = 30 * time.Second

// shell is a shell on a terminal through pamd's SSH server at the far end
// of a session's dial stream (the gateway's ssh handler), opened as pamd
// ssh opens one.
type shell struct {
	client *ssh.Client
	sess   *ssh.Session
	stdin  io.WriteCloser
}

// openShell logs in to pamd's SSH server on nc as user, pinning hostKey
// (authorized_keys form, from the session's grant), and starts a shell on
// a terminal of size whose output and errors go to out. banner gets, line
// by line and escaped, what pamd says before refusing a login (why the
// target cannot be used).
func openShell(nc net.Conn, hostKey, user string, size Size, out io.Writer, banner func(string)) (*shell, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("pamd: the resource's host key is unusable: %v", err)
	}
	nc.SetDeadline(time.Now().Add(handshakeWithin))
	cc, chans, reqs, err := ssh.NewClientConn(nc, "pamd", &ssh.ClientConfig{
		User:            user,
		HostKeyCallback: ssh.FixedHostKey(key),
		BannerCallback: func(msg string) error {
			// The text can quote the target: escaped, it cannot drive the terminal.
			for _, line := range strings.Split(strings.TrimSuffix(msg, "\n"), "\n") {
				banner(printable.Escape(strings.TrimSuffix(line, "\r")))
			}
			return nil
		},
		ClientVersion: "SSH-2.0-pamd",
	})
	if err != nil {
		nc.Close()
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, errors.New("pamd: the target refused the login (see above)")
		}
		return nil, fmt.Errorf("pamd: the SSH handshake with the gateway failed: %v", err)
	}
	nc.SetDeadline(time.Time{})
	sh := &shell{client: ssh.NewClient(cc, chans, reqs)}
	if err := sh.start(size, out); err != nil {
		sh.close()
		return nil, err
	}
	return sh, nil
}

func (sh *shell) start(size Size, out io.Writer) error {
	var err error
	if sh.sess, err = sh.client.NewSession(); err != nil {
		return fmt.Errorf("pamd: open a session channel: %v", err)
	}
	if sh.stdin, err = sh.sess.StdinPipe(); err != nil {
		return err
	}
	// Both go to the one terminal; the gateway says why it cuts a shell on
	// stderr.
	sh.sess.Stdout, sh.sess.Stderr = out, out
	if err := sh.sess.RequestPty("xterm-256color", size.Rows, size.Cols, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return fmt.Errorf("pamd: request a terminal: %v", err)
	}
	if err := sh.sess.Shell(); err != nil {
		return fmt.Errorf("pamd: start the shell: %v", err)
	}
	return nil
}

// input types into the shell.
func (sh *shell) input(b []byte) error {
	_, err := sh.stdin.Write(b)
	return err
}

// resize passes a window change on.
func (sh *shell) resize(s Size) error { return sh.sess.WindowChange(s.Rows, s.Cols) }

// wait returns once the shell has ended and all its output was written,
// with why it ended, for the browser.
func (sh *shell) wait() string {
	err := sh.sess.Wait()
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return "the shell exited"
	case errors.As(err, &exit) && exit.Signal() != "":
		return "the shell was killed by signal " + exit.Signal()
	case errors.As(err, &exit):
		return fmt.Sprintf("the shell exited with status %d", exit.ExitStatus())
	}
	return "the connection to the target closed"
}

// close ends the shell and the SSH connection (and so the dial stream).
func (sh *shell) close() { sh.client.Close() }
