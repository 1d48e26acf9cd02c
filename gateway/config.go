package gateway

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Config is everything a gateway needs; main fills it from flags.
type Config struct {
	DataDir string
	Token   string // enrollment token, needed only the first time
	Version string
	Logger  *slog.Logger
	// Identity, when set, is used instead of the files in DataDir (pamd dev's
	// in-process gateway).
	Identity *Identity
	// RecordBatchDelay is how long new records wait to be uploaded together;
	// each upload is a synced write on the server. Default 200 ms.
	RecordBatchDelay time.Duration
}

// Validate fills defaults and names the first bad field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("--data-dir: the gateway keeps its certificate and record spool there")
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.RecordBatchDelay == 0 {
		c.RecordBatchDelay = 200 * time.Millisecond
	}
	if c.RecordBatchDelay < 0 || c.RecordBatchDelay > time.Minute {
		return errors.New("--record-batch-delay: want a duration from 0 to 1m")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Identity is what enrollment leaves in the data dir.
type Identity struct {
	Name        string `json:"name"`
	ServerURL   string `json:"server_url"` // https://host:port
	Fingerprint string `json:"ca_fingerprint"`
	CertPEM     []byte `json:"-"`
	KeyPEM      []byte `json:"-"`
}

const (
	identityFile = "gateway.json"
	certFile     = "gateway.crt"
	keyFile      = "gateway.key"
)

// Save writes the identity into dir; the key file is 0600.
func (id *Identity) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("gateway: data dir: %w", err)
	}
	meta, _ := json.MarshalIndent(id, "", "  ")
	for _, f := range []struct {
		name string
		data []byte
	}{{keyFile, id.KeyPEM}, {certFile, id.CertPEM}, {identityFile, meta}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("gateway: write %s: %w", f.name, err)
		}
	}
	return nil
}

// LoadIdentity reads an identity saved by Save; ok is false when dir holds none.
func LoadIdentity(dir string) (id *Identity, ok bool, err error) {
	meta, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("gateway: %w", err)
	}
	id = new(Identity)
	if err := json.Unmarshal(meta, id); err != nil {
		return nil, false, fmt.Errorf("gateway: %s: %w", identityFile, err)
	}
	if id.CertPEM, err = os.ReadFile(filepath.Join(dir, certFile)); err != nil {
		return nil, false, fmt.Errorf("gateway: %w", err)
	}
	if id.KeyPEM, err = os.ReadFile(filepath.Join(dir, keyFile)); err != nil {
		return nil, false, fmt.Errorf("gateway: %w", err)
	}
	return id, true, nil
}

func (id *Identity) tlsCert() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return c, fmt.Errorf("gateway: certificate in data dir: %w", err)
	}
	return c, nil
}
