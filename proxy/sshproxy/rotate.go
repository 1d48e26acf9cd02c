package sshproxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// Rotation rotates a password account with ChangePassword, and a key
// account with AuthorizeKey, then RemoveOldKey once the new key logs in.
// Certificate accounts have no stored credential.
func (Handler) Rotation(r *tunnel.Rotation) (*proxy.TargetOps, error) {
	if r.Account.SSH == nil || (r.With != nil && r.With.SSH == nil) {
		return nil, errors.New("the rotation has no ssh part (server and gateway versions differ?)")
	}
	switch r.Account.SSH.Auth {
	case "key":
		return &proxy.TargetOps{Login: Login, Change: AuthorizeKey, Retire: RemoveOldKey, Next: withKey(&r.Account, r.NewPrivateKey)}, nil
	case "certificate":
		return nil, errors.New("certificate accounts have no stored credential to rotate")
	}
	next := withKey(&r.Account, "")
	next.SSH.Password = r.NewPassword
	return &proxy.TargetOps{Login: Login, Change: ChangePassword, Next: next}, nil
}

// withKey copies d, with key (when given) as its private key.
func withKey(d *tunnel.Descriptor, key string) *tunnel.Descriptor {
	c := *d
	part := *d.SSH
	c.SSH = &part
	if key != "" {
		part.PrivateKey, part.Passphrase = key, ""
	}
	return &c
}

// Login proves the descriptor's credential logs in to the target.
func Login(ctx context.Context, d *tunnel.Descriptor) error {
	c, err := dialTarget(ctx, d)
	if err != nil {
		return err
	}
	return c.Close()
}

// ChangePassword sets the account's new password on the target: through
// the rotation account with "sudo -n chpasswd", or as the account itself
// by answering passwd's prompts.
func ChangePassword(ctx context.Context, r *tunnel.Rotation) error {
	if r.With != nil {
		// A newline or colon in the name would let the chpasswd line set
		// another user's password.
		if !safeUser.MatchString(r.Account.SSH.Username) {
			return fmt.Errorf("user name %q is not one pamd passes to chpasswd", r.Account.SSH.Username)
		}
		return runAs(ctx, r.With, "sudo -n chpasswd", r.Account.SSH.Username+":"+r.NewPassword+"\n")
	}
	return selfPasswd(ctx, &r.Account, r.NewPassword)
}

// AuthorizeKey adds the new public key to the account's authorized_keys,
// keeping the old one: both log in until RemoveOldKey.
func AuthorizeKey(ctx context.Context, r *tunnel.Rotation) error {
	blob, err := keyBlob(r.NewPublicKey)
	if err != nil {
		return err
	}
	script := `set -e
umask 077
mkdir -p "$HOME/.ssh"
f="$HOME/.ssh/authorized_keys"
touch "$f"
if ! grep -qF '` + blob + `' "$f"; then
  [ -z "$(tail -c1 "$f")" ] || echo >> "$f"
  printf '%s\n' '` + strings.TrimSpace(r.NewPublicKey) + `' >> "$f"
fi
`
	return keyScript(ctx, r, &r.Account, script)
}

// RemoveOldKey removes the account's old public key from authorized_keys,
// logging in with the new key, and refuses to leave a file without the
// new one.
func RemoveOldKey(ctx context.Context, r *tunnel.Rotation) error {
	old, err := publicOf(&r.Account)
	if err != nil {
		return err
	}
	newBlob, err := keyBlob(r.NewPublicKey)
	if err != nil {
		return err
	}
	if old == newBlob {
		return nil
	}
	script := `set -e
f="$HOME/.ssh/authorized_keys"
grep -vF '` + old + `' "$f" > "$f.pamd" || true
if ! grep -qF '` + newBlob + `' "$f.pamd"; then rm -f "$f.pamd"; echo "the new key is not in authorized_keys; the old one stays" >&2; exit 1; fi
cat "$f.pamd" > "$f"
rm -f "$f.pamd"
`
	return keyScript(ctx, r, withKey(&r.Account, r.NewPrivateKey), script)
}

// keyScript runs a shell script as the account: logged in as it (self),
// or through the rotation account with sudo.
func keyScript(ctx context.Context, r *tunnel.Rotation, self *tunnel.Descriptor, script string) error {
	if r.With != nil {
		if !safeUser.MatchString(r.Account.SSH.Username) {
			return fmt.Errorf("user name %q is not one pamd passes to sudo", r.Account.SSH.Username)
		}
		return runAs(ctx, r.With, "sudo -n -H -u "+r.Account.SSH.Username+" sh -s", script)
	}
	return runAs(ctx, self, "sh -s", script)
}

var safeUser = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._-]*$`)

// runAs logs in with d, runs command with stdin, and turns a failure into
// an error that carries the command's own words (which never hold stdin).
func runAs(ctx context.Context, d *tunnel.Descriptor, command, stdin string) error {
	s, done, err := sessionAs(ctx, d)
	if err != nil {
		return err
	}
	defer done()
	s.Stdin = strings.NewReader(stdin)
	out, err := s.CombinedOutput(command)
	if err != nil {
		return fmt.Errorf("%q as %s failed: %s", command, d.SSH.Username, lastLine(out, err))
	}
	return nil
}

// sessionAs logs in with d and opens a session that ends with ctx; done
// closes both.
func sessionAs(ctx context.Context, d *tunnel.Descriptor) (s *ssh.Session, done func(), err error) {
	c, err := dialTarget(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	if s, err = c.NewSession(); err != nil {
		stop()
		c.Close()
		return nil, nil, fmt.Errorf("open a session as %s: %v", d.SSH.Username, err)
	}
	return s, func() { s.Close(); stop(); c.Close() }, nil
}

// selfPasswd runs passwd on a terminal as the account and answers its
// prompts: the current password first, then the new one twice.
func selfPasswd(ctx context.Context, d *tunnel.Descriptor, newPassword string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, done, err := sessionAs(ctx, d)
	if err != nil {
		return err
	}
	defer done()
	if err := s.RequestPty("dumb", 24, 200, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		return fmt.Errorf("terminal for passwd: %v", err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Start("LC_ALL=C passwd"); err != nil {
		return fmt.Errorf("start passwd: %v", err)
	}
	var seen bytes.Buffer // what passwd printed since the last answer
	buf := make([]byte, 512)
	answered := 0
	for {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if loc := prompt.FindIndex(seen.Bytes()); loc != nil {
			answer := newPassword
			if answered == 0 && bytes.Contains(bytes.ToLower(seen.Bytes()), []byte("current")) {
				answer = d.SSH.Password
			}
			if answered++; answered > 4 {
				// A quality rule refused the new password and passwd asks
				// again: its reason is what it printed before the prompt.
				return fmt.Errorf("passwd as %s kept asking for a password: %s", d.SSH.Username, passwdSaid(seen.Bytes()[:loc[0]], errors.New("no reason given")))
			}
			in.Write([]byte(answer + "\n"))
			seen.Reset()
		}
		if err != nil {
			break
		}
	}
	if err := s.Wait(); err != nil {
		return fmt.Errorf("passwd as %s failed: %s", d.SSH.Username, passwdSaid(seen.Bytes(), err))
	}
	return nil
}

var prompt = regexp.MustCompile(`(?i)password: *$`)

// passwdSaid is every line passwd printed after its last prompt, on one
// line: its last line alone ("passwd: password unchanged") hides the reason
// the lines before give, such as a minimum password age ("You must wait
// longer to change your password") or a quality rule ("BAD PASSWORD: ...").
// The terminal does not echo, so no answer is in it.
func passwdSaid(out []byte, err error) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		if l = strings.TrimSuffix(strings.TrimSpace(l), "."); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}

// lastLine is the last non-empty line a command printed, or its error.
func lastLine(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r", "")), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// keyBlob is the base64 key of an authorized_keys line.
func keyBlob(line string) (string, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("new public key: %v", err)
	}
	return base64.StdEncoding.EncodeToString(pub.Marshal()), nil
}

// publicOf is the base64 public key of the descriptor's private key.
func publicOf(d *tunnel.Descriptor) (string, error) {
	signer, err := accountSigner(d)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(signer.PublicKey().Marshal()), nil
}
