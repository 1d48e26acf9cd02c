package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Login is what pamd login leaves behind.
type Login struct {
	Server      string    `json:"server"`
	Fingerprint string    `json:"ca_fingerprint,omitempty"`
	User        string    `json:"user"`
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expires_at"`
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
func (l *Login) Client() (*Client, error) { return New(l.Server, l.Fingerprint, l.Token) }
