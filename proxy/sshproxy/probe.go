package sshproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

var errGotKey = errors.New("host key captured")

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
		ClientVersion: "SSH-2.0-pamd",
	})
	if key == nil {
		return "", fmt.Errorf("%s did not complete an SSH key exchange: %v", target, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
}
