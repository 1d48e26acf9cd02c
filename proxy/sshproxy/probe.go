package sshproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
)

var errGotKey = errors.New("host key captured")

// probeHostKeyAlgorithms are x/crypto's default host key algorithms, in
// its order, without the SHA-1 and DSA ones.
var probeHostKeyAlgorithms = []string{
	ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSASHA512v01,
	ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01, ssh.CertAlgoED25519v01,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoED25519,
}

// Probe answers the server's probe of an ssh target. Without an account
// in d, the host key it presents (nothing logs in). With one (d.SSH's
// username), it logs in as the account would for a session (the pinned
// host key checked, the credential injected) and answers the server's
// version, which says the login was tried: an older gateway answers a
// host key only.
func (Handler) Probe(ctx context.Context, d *tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	if d.SSH != nil && d.SSH.Username != "" {
		c, err := dialTarget(ctx, d)
		if err != nil {
			return &tunnel.ProbeResult{}, err
		}
		defer c.Close()
		return &tunnel.ProbeResult{Version: string(c.ServerVersion())}, nil
	}
	key, err := ProbeHostKey(ctx, d.Target)
	return &tunnel.ProbeResult{HostKey: key}, err
}

// ProbeHostKey connects to target and returns the SSH host key it presents
// (authorized_keys form), without logging in.
func ProbeHostKey(ctx context.Context, target string) (string, error) {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := dialer.DialContext(dctx, "tcp", target)
	if err != nil {
		return "", fmt.Errorf("cannot reach %s: %w", target, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	var key ssh.PublicKey
	_, _, _, err = ssh.NewClientConn(nc, target, &ssh.ClientConfig{
		User: "pamd-probe",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
		// Never SHA-1 "ssh-rsa": an RSA key is then pinned from a SHA-2
		// signature, as dialTarget checks it.
		HostKeyAlgorithms: probeHostKeyAlgorithms,
		ClientVersion:     "SSH-2.0-pamd",
	})
	if key == nil {
		return "", fmt.Errorf("%s did not complete an SSH key exchange: %v", target, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}
