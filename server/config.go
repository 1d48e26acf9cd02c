package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/pamd/pamd/server/auth"
)

// Config is everything pamd server needs; main fills it from flags.
type Config struct {
	DataDir       string
	Listen        string
	PublicURL     string
	MasterKeyFile string // default <DataDir>/master.key
	MasterKey     string // the key itself (PAMD_MASTER_KEY); wins over the file
	TLSCert       string
	TLSKey        string
	AdminPassword string // first start only; random when empty
	// KeepAdminPassword makes a generated first password lasting instead
	// of one-time: pamd dev prints it for evaluation.
	KeepAdminPassword bool
	Version           string
	// RotationCheck is how often the server looks for due and interrupted
	// credential rotations (default 30s).
	RotationCheck time.Duration
	// GatewayCertLifetime is how long a gateway's client certificate is
	// valid (default 24h); gateways renew at half of it.
	GatewayCertLifetime time.Duration
	// MetricsListen, when set, is a plain-HTTP address serving /metrics,
	// /healthz and /readyz with no login (keep it off the internet);
	// /metrics on the main port needs an admin's or auditor's token.
	MetricsListen string
	// AuditAnchor, when set, is where the audit log's head is written as
	// it moves (audit.Anchor): a file, or "syslog"; AuditAnchorEvery is
	// how often it looks (default 1m).
	AuditAnchor      string
	AuditAnchorEvery time.Duration
	// RequestWebhook is the URL approvers are told of new access requests
	// at (PAMD_REQUEST_WEBHOOK; empty: none).
	RequestWebhook string
	Logger         *slog.Logger
	// Out receives the one-time first-start banner (the admin password).
	Out io.Writer
}

// Validate fills defaults and names the first bad field.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		c.DataDir = "./pamd-data"
	}
	if c.Listen == "" {
		c.Listen = ":8443"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT or :PORT", c.Listen)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--public-url %q: want https://HOST[:PORT]", c.PublicURL)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.MasterKeyFile == "" {
		c.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < auth.MinPasswordLen {
		return fmt.Errorf("PAMD_ADMIN_PASSWORD: at least %d characters", auth.MinPasswordLen)
	}
	if c.RotationCheck <= 0 {
		c.RotationCheck = 30 * time.Second
	}
	if c.GatewayCertLifetime == 0 {
		c.GatewayCertLifetime = 24 * time.Hour
	}
	if c.GatewayCertLifetime < 10*time.Second || c.GatewayCertLifetime > 366*24*time.Hour {
		return fmt.Errorf("--gateway-cert-lifetime %s: want from 10s to 8784h", c.GatewayCertLifetime)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return nil
}
