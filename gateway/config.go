package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pamd/pamd/internal/httpconnect"
	"github.com/pamd/pamd/protocol/pki"
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
	// Proxy is the HTTP proxy to reach the server through (CONNECT), as
	// http://[USER:PASSWORD@]HOST:PORT, for enrollment and the tunnel.
	// Empty: https_proxy / HTTPS_PROXY and NO_PROXY from the environment.
	Proxy string
	// HealthListen, when set, is a plain-HTTP address serving /healthz,
	// /readyz (connected to the server) and /metrics.
	HealthListen string
	// Group is the gateway group this gateway serves (its hello says it):
	// the server sends it connections to the group's resources, sharing
	// them among the group's connected gateways. Empty: none.
	Group string
}

// checkGroup checks a gateway group's name as the server does its names.
func checkGroup(group string) error {
	if len(group) > 64 {
		return errors.New("--gateway-group: at most 64 characters")
	}
	for _, r := range group {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("--gateway-group %q: use letters, digits, '-', '_' and '.'", group)
		}
	}
	return nil
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
	if err := checkGroup(c.Group); err != nil {
		return err
	}
	if c.RecordBatchDelay < 0 || c.RecordBatchDelay > time.Minute {
		return errors.New("--record-batch-delay: want a duration from 0 to 1m")
	}
	if c.Proxy != "" {
		if _, err := httpconnect.Parse(c.Proxy); err != nil {
			return fmt.Errorf("--proxy: %w", err)
		}
	} else if err := httpconnect.CheckEnvironment(); err != nil {
		return err
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

	// NextFingerprint is pinned too: the next server CA of a rotation, as
	// the server named it in a renewal (renew.go).
	NextFingerprint string `json:"next_ca_fingerprint,omitempty"`
}

const (
	identityFile = "gateway.json"
	// pairFile holds the certificate and its key (PEM) in one file, so a
	// renewal replaces both in one rename.
	pairFile = "gateway.pem"
	// Enrollments before renewal kept them apart; they are read, and removed
	// at the first renewal.
	legacyCertFile = "gateway.crt"
	legacyKeyFile  = "gateway.key"
)

// Save writes the identity into dir, each file 0600 and replaced atomically.
func (id *Identity) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("gateway: data dir: %w", err)
	}
	if err := id.saveCert(dir); err != nil {
		return err
	}
	meta, _ := json.MarshalIndent(id, "", "  ")
	return writeAtomic(dir, identityFile, meta)
}

// saveCert replaces the certificate and key in dir with id's.
func (id *Identity) saveCert(dir string) error {
	pair := append(append([]byte{}, id.CertPEM...), id.KeyPEM...)
	if err := writeAtomic(dir, pairFile, pair); err != nil {
		return err
	}
	for _, f := range []string{legacyCertFile, legacyKeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("gateway: remove the old %s: %w", f, err)
		}
	}
	return nil
}

// writeAtomic writes data to dir/name through a synced temporary file and a
// rename, so a crash leaves the old file or the new one, never half of one.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*") // mode 0600
	if err != nil {
		return fmt.Errorf("gateway: write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("gateway: write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil { // the rename itself survives a crash
		d.Sync()
		d.Close()
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
	pair, err := os.ReadFile(filepath.Join(dir, pairFile))
	switch {
	case err == nil:
		id.CertPEM, id.KeyPEM = splitPair(pair)
	case errors.Is(err, os.ErrNotExist):
		if id.CertPEM, err = os.ReadFile(filepath.Join(dir, legacyCertFile)); err != nil {
			return nil, false, fmt.Errorf("gateway: %w", err)
		}
		if id.KeyPEM, err = os.ReadFile(filepath.Join(dir, legacyKeyFile)); err != nil {
			return nil, false, fmt.Errorf("gateway: %w", err)
		}
	default:
		return nil, false, fmt.Errorf("gateway: %w", err)
	}
	return id, true, nil
}

// splitPair separates the certificate blocks of a pair file from the rest
// (the key).
func splitPair(pair []byte) (certPEM, keyPEM []byte) {
	for rest := pair; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return certPEM, keyPEM
		}
		if b.Type == "CERTIFICATE" {
			certPEM = append(certPEM, pem.EncodeToMemory(b)...)
		} else {
			keyPEM = append(keyPEM, pem.EncodeToMemory(b)...)
		}
	}
}

func (id *Identity) tlsCert() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return c, fmt.Errorf("gateway: certificate in data dir: %w", err)
	}
	return c, nil
}

// Certificate parses the identity's client certificate.
func (id *Identity) Certificate() (*x509.Certificate, error) {
	c, err := pki.DecodeCert(id.CertPEM)
	if err != nil {
		return nil, fmt.Errorf("gateway: certificate in data dir: %w", err)
	}
	return c, nil
}

// ErrCertificateExpired means the gateway's certificate expired (it was
// offline for longer than the lifetime the server gives): only a new
// enrollment brings it back.
var ErrCertificateExpired = errors.New("gateway: certificate expired")

// CheckExpiry returns an ErrCertificateExpired that says what to do when
// the identity's certificate has expired by now.
func (id *Identity) CheckExpiry(now time.Time) error {
	c, err := id.Certificate()
	if err != nil {
		return err
	}
	return expiryError(id.Name, c.NotAfter, now)
}

func expiryError(name string, notAfter, now time.Time) error {
	if !now.After(notAfter) {
		return nil
	}
	return fmt.Errorf("%w at %s, while the gateway was offline: re-enroll it: pamd gateways token --name %s --replace, then pamd gateway --token TOKEN with this --data-dir",
		ErrCertificateExpired, notAfter.UTC().Format(time.RFC3339), name)
}
