package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pamd/pamd/protocol/pki"
)

// Login is what pamd login leaves behind.
type Login struct {
	Server      string `json:"server"`
	Fingerprint string `json:"ca_fingerprint,omitempty"`
	// NextFingerprint is the server's next CA while its CA is rotated
	// (LearnPins): trusted too, and the one pinned once the rotation
	// completed.
	NextFingerprint string    `json:"next_ca_fingerprint,omitempty"`
	User            string    `json:"user"`
	Token           string    `json:"token"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// ErrNotLoggedIn means there is no saved login.
var ErrNotLoggedIn = errors.New("not logged in: run pamd login --server https://HOST:PORT --user NAME")

// ConfigDir is where the CLI keeps its login: dir (the --config-dir flag)
// when not empty, else $PAMD_CONFIG_DIR, else pamd under the user's config
// dir.
func ConfigDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if d := os.Getenv("PAMD_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config dir: set PAMD_CONFIG_DIR: %w", err)
	}
	return filepath.Join(d, "pamd"), nil
}

func loginFile(dir string) string { return filepath.Join(dir, "login.json") }

// LoadLogin reads the saved login from dir.
func LoadLogin(dir string) (*Login, error) {
	b, err := os.ReadFile(loginFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	var l Login
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): run pamd login again", loginFile(dir), err)
	}
	return &l, nil
}

// Save writes the login to dir with mode 0600 (the directory 0700).
func (l *Login) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	tmp := loginFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, loginFile(dir))
}

// RemoveLogin deletes the saved login.
func RemoveLogin(dir string) error {
	err := os.Remove(loginFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Client returns an API client for the saved login.
func (l *Login) Client() (*Client, error) {
	c, err := New(l.Server, l.Fingerprint, l.Token, l.NextFingerprint)
	if c != nil {
		c.Fingerprint, c.NextFingerprint = l.Fingerprint, l.NextFingerprint
	}
	return c, err
}

// LearnPins updates a pinned login from what the server pins now. served
// is the fingerprint of the last certificate of the chain that verified
// on the connection; current and next are what the server says clients
// pin (api.PinHeader: the chain it serves new connections, api.NextPinHeader:
// the next CA of a rotation in progress, or empty). They are followed only
// when served is one the login pins (the answer came from the server it
// trusts); the login then pins current (served when the server names
// none) and next alone. So the next CA of a rotation in progress is added
// (learned is its fingerprint, to tell the user), the old pin is dropped
// once the rotation completed and the next one once it was rolled back,
// and a login offline through a complete and a new start pins the CA
// served and the new next one. It reports whether the login changed. A
// login that trusts the system roots (no fingerprint) pins nothing.
func (l *Login) LearnPins(served, current, next string) (changed bool, learned string) {
	if l.Fingerprint == "" || served == "" {
		return false, ""
	}
	norm := func(fp string) string {
		n, err := pki.NormalizeFingerprint(fp)
		if err != nil {
			return ""
		}
		return n
	}
	pinned := func(fp string) bool {
		return fp != "" && (fp == norm(l.Fingerprint) || fp == norm(l.NextFingerprint))
	}
	served = norm(served)
	if !pinned(served) {
		return false, "" // not what verified: never follow what it says
	}
	cur := served
	if current != "" {
		if cur = norm(current); cur == "" {
			return false, ""
		}
	}
	if next != "" {
		if next = norm(next); next == "" {
			return false, ""
		}
	}
	if next == cur {
		next = ""
	}
	if next != "" && !pinned(next) {
		learned = next
	}
	if l.Fingerprint == cur && l.NextFingerprint == next {
		return false, ""
	}
	l.Fingerprint, l.NextFingerprint = cur, next
	return true, learned
}
