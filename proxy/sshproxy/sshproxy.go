package sshproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/printable"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// Handler is the gateway's ssh handler: it serves dial streams, probes
// host keys and rotates credentials.
type Handler struct{}

// Handle serves one dial stream of an ssh resource until either side ends
// or ctx is done; the cause of ctx (a session end reason) is shown in every
// open shell before the cut.
func (Handler) Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, rec proxy.Recorder) error {
	if d.SSH == nil {
		proxy.Answer(stream, proxy.Refuse("pamd gateway: the descriptor has no ssh part (server and gateway versions differ?)"))
		return errors.New("descriptor without its ssh part")
	}
	hostSigner, err := ssh.ParsePrivateKey([]byte(d.SSH.ServerHostKey))
	if err != nil {
		proxy.Answer(stream, proxy.Refuse("pamd: the resource's SSH host key is unusable"))
		return fmt.Errorf("server host key: %w", err)
	}
	target, targetErr := dialTarget(ctx, d)
	if targetErr != nil {
		proxy.Answer(stream, targetErr)
		rec.Record(tunnel.Record{Type: "error", Data: targetErr.Error()})
		refuseClient(stream, hostSigner, targetErr)
		return targetErr
	}
	defer target.Close()
	if err := proxy.Answer(stream, nil); err != nil {
		return err
	}

	cfg := &ssh.ServerConfig{ServerVersion: "SSH-2.0-pamd", NoClientAuth: true}
	cfg.Ciphers = clientCiphers
	cfg.AddHostKey(hostSigner)
	stream.SetDeadline(time.Now().Add(30 * time.Second))
	sconn, chans, reqs, err := ssh.NewServerConn(stream, cfg)
	if err != nil {
		return fmt.Errorf("client handshake: %w", err)
	}
	stream.SetDeadline(time.Time{})
	defer sconn.Close()

	c := &conn{desc: d, target: target, rec: rec.Record, open: map[ssh.Channel]*channel{}}
	defer proxy.NoticesOf(ctx).Subscribe(c.notice)()
	go rejectGlobal(reqs)
	go func() { // the target going away ends the client connection too
		target.Wait()
		sconn.Close()
	}()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			c.cut(endMessage(ctx))
			sconn.Close()
			target.Close()
		case <-done:
		}
	}()
	var wg sync.WaitGroup
	n := 0
	for nc := range chans {
		wg.Add(1)
		go func(nc ssh.NewChannel, id int) {
			defer wg.Done()
			c.relay(nc, id)
		}(nc, n)
		n++
	}
	close(done)
	target.Close() // the client is gone: end the target's channels so the relays finish
	wg.Wait()
	return nil
}

func endMessage(ctx context.Context) string {
	cause := context.Cause(ctx)
	if errors.Is(cause, context.DeadlineExceeded) {
		return "session expired"
	}
	if cause != nil {
		return "session ended: " + cause.Error()
	}
	return "session ended"
}

// refuseClient completes the SSH handshake only to show the user why the
// target cannot be used (OpenSSH prints banners on stderr), then refuses.
func refuseClient(stream net.Conn, host ssh.Signer, why error) {
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-pamd",
		// why can quote the target (its error text): escaped, it cannot
		// drive the user's terminal.
		BannerCallback: func(ssh.ConnMetadata) string {
			return "pamd: " + printable.Escape(strings.TrimPrefix(why.Error(), "pamd: ")) + "\n"
		},
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("pamd: the target cannot be used")
		},
	}
	cfg.AddHostKey(host)
	stream.SetDeadline(time.Now().Add(15 * time.Second))
	if c, _, _, err := ssh.NewServerConn(stream, cfg); err == nil {
		c.Close()
	}
}

// clientCiphers are the ciphers pamd's SSH server offers clients: x/crypto's
// defaults but chacha20-poly1305. OpenSSH asks for that one first, and
// x/crypto/ssh's ChaCha20 has no amd64 assembly: it moved bulk data at a
// quarter of AES-CTR with HMAC-SHA-256 and a tenth of AES-GCM (here, 240
// MB/s against 1 and 3 GB/s), and took a quarter of the gateway's CPU in
// a download. A client without AES-GCM gets AES-CTR.
var clientCiphers = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}

func rejectGlobal(reqs <-chan *ssh.Request) {
	for r := range reqs {
		if r.WantReply {
			r.Reply(false, nil) // keepalives are answered; remote forwarding is not offered
		}
	}
}

// HostKeyMismatch is the error for a target whose host key is not the pinned one.
type HostKeyMismatch struct {
	Resource, Target, Pinned, Presented string
}

func (e *HostKeyMismatch) Error() string {
	return fmt.Sprintf("host key mismatch for resource %s: pinned %s, but %s presented %s; the connection was refused. If the change is expected, an admin runs: pamd resources trust-host-key %s",
		e.Resource, e.Pinned, e.Target, e.Presented, e.Resource)
}

// dialTarget connects and logs in to the target; its errors are worded for
// the person at the client.
func dialTarget(ctx context.Context, d *tunnel.Descriptor) (*ssh.Client, error) {
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.SSH.HostKey))
	if err != nil {
		return nil, proxy.TargetFailed(tunnel.ReasonOther, fmt.Errorf("resource %s has no pinned host key; an admin runs: pamd resources trust-host-key %s", d.Resource, d.Resource))
	}
	auth, err := authMethods(d)
	if err != nil {
		return nil, proxy.TargetFailed(tunnel.ReasonOther, err)
	}
	cfg := &ssh.ClientConfig{
		User: d.SSH.Username,
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if bytes.Equal(key.Marshal(), pinned.Marshal()) {
				return nil
			}
			return &HostKeyMismatch{Resource: d.Resource, Target: d.Target, Pinned: ssh.FingerprintSHA256(pinned), Presented: ssh.FingerprintSHA256(key)}
		},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
		ClientVersion:     "SSH-2.0-pamd",
		Timeout:           10 * time.Second,
	}
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := dialer.DialContext(dctx, "tcp", d.Target)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return nil, proxy.TargetFailed(tunnel.ReasonUnreachable, fmt.Errorf("cannot reach %s for resource %s: %v", d.Target, d.Resource, err))
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	cc, chans, reqs, err := ssh.NewClientConn(nc, d.Target, cfg)
	if err != nil {
		nc.Close()
		var mismatch *HostKeyMismatch
		if errors.As(err, &mismatch) {
			return nil, proxy.TargetFailed(tunnel.ReasonHostKeyMismatch, mismatch)
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, proxy.TargetFailed(tunnel.ReasonLoginRefused, fmt.Errorf("the SSH server of resource %s refused the stored %s credential of account %s (user %s)%s",
				d.Resource, d.SSH.Auth, d.Account, d.SSH.Username, authHint(d.SSH.Auth)))
		}
		return nil, proxy.TargetFailed(tunnel.ReasonProtocol, fmt.Errorf("SSH handshake with %s failed: %v", d.Target, err))
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

func authHint(auth string) string {
	if auth == "certificate" {
		return "; does its sshd trust the resource's CA? (pamd resources ssh-ca RESOURCE --setup-script)"
	}
	return ""
}

// hostKeyAlgorithms are the algorithms the pinned key may be presented
// with: an RSA key only with SHA-2 signatures (RFC 8332), never the SHA-1
// "ssh-rsa" its type is named after.
func hostKeyAlgorithms(pinned ssh.PublicKey) []string {
	if pinned.Type() == ssh.KeyAlgoRSA {
		return rsaSHA2
	}
	return []string{pinned.Type()}
}

var rsaSHA2 = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}

// sha2Signer limits an RSA signer (or one of an RSA certificate) to SHA-2
// signatures; a target that accepts only "ssh-rsa" is refused.
func sha2Signer(s ssh.Signer) (ssh.Signer, error) {
	pub := s.PublicKey()
	if cert, ok := pub.(*ssh.Certificate); ok {
		pub = cert.Key
	}
	if pub.Type() != ssh.KeyAlgoRSA {
		return s, nil
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, errors.New("the RSA key cannot sign with SHA-2")
	}
	return ssh.NewSignerWithAlgorithms(as, rsaSHA2)
}

// passwordAnswers answers a keyboard-interactive round with the stored
// password, but only when every question is a password prompt shown
// without echo: a target must not get the password by asking for
// something else (a one-time code, "type your password to confirm:" with
// echo on). A round without questions (a message) is answered empty.
func passwordAnswers(password string) ssh.KeyboardInteractiveChallenge {
	return func(_, _ string, questions []string, echos []bool) ([]string, error) {
		if len(echos) != len(questions) {
			return nil, errors.New("malformed keyboard-interactive prompt")
		}
		out := make([]string, len(questions))
		for i, q := range questions {
			lq := strings.ToLower(q)
			if echos[i] || !strings.Contains(lq, "password") || strings.Contains(lq, "new") {
				return nil, fmt.Errorf("the target asked %q, which is not a password prompt", clipPrompt(q))
			}
			out[i] = password
		}
		return out, nil
	}
}

func clipPrompt(q string) string {
	if len(q) > 80 {
		return q[:80] + "…"
	}
	return q
}

func authMethods(d *tunnel.Descriptor) ([]ssh.AuthMethod, error) {
	switch d.SSH.Auth {
	case "", "password":
		return []ssh.AuthMethod{ssh.Password(d.SSH.Password), ssh.KeyboardInteractive(passwordAnswers(d.SSH.Password))}, nil
	case "key":
		signer, err := accountSigner(d)
		if err != nil {
			return nil, err
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil
	case "certificate":
		signer, err := ssh.ParsePrivateKey([]byte(d.SSH.PrivateKey))
		if err != nil {
			return nil, errors.New("the connection's certificate key does not parse")
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.SSH.Certificate))
		cert, ok := pub.(*ssh.Certificate)
		if err != nil || !ok {
			return nil, errors.New("the connection's certificate does not parse")
		}
		cs, err := ssh.NewCertSigner(cert, signer)
		if err != nil {
			return nil, err
		}
		if cs, err = sha2Signer(cs); err != nil {
			return nil, fmt.Errorf("the connection's certificate key: %w", err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(cs)}, nil
	}
	return nil, fmt.Errorf("unknown SSH auth %q", d.SSH.Auth)
}

// accountSigner opens an account's stored private key; an RSA key signs
// with SHA-2 only.
func accountSigner(d *tunnel.Descriptor) (ssh.Signer, error) {
	var signer ssh.Signer
	var err error
	if d.SSH.Passphrase != "" {
		signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(d.SSH.PrivateKey), []byte(d.SSH.Passphrase))
	} else {
		signer, err = ssh.ParsePrivateKey([]byte(d.SSH.PrivateKey))
	}
	if err != nil {
		return nil, fmt.Errorf("the stored private key of account %s does not open", d.Account)
	}
	if signer, err = sha2Signer(signer); err != nil {
		return nil, fmt.Errorf("the stored private key of account %s: %w", d.Account, err)
	}
	return signer, nil
}
