package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/internal/procs"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server"
	"github.com/pamd/pamd/store"
)

func (a *app) serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "run the control plane: API, web UI and tunnel endpoint on one port",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "./pamd-data", EnvVars: []string{"PAMD_DATA_DIR"}},
			&cli.StringFlag{Name: "listen", Value: ":8443", EnvVars: []string{"PAMD_LISTEN"}},
			&cli.StringFlag{Name: "public-url", Usage: "https://HOST:PORT as gateways and users reach it", EnvVars: []string{"PAMD_PUBLIC_URL"}},
			&cli.StringFlag{Name: "master-key-file", Usage: "default DATA_DIR/master.key (PAMD_MASTER_KEY holds the key itself)", EnvVars: []string{"PAMD_MASTER_KEY_FILE"}},
			envOnlyFlag("master-key", "PAMD_MASTER_KEY", "the master key itself, instead of the file"),
			envOnlyFlag("admin-password", "PAMD_ADMIN_PASSWORD", "the first admin password at the first start, instead of a one-time one in DATA_DIR/initial-admin-password"),
			&cli.StringFlag{Name: "tls-cert", Usage: "certificate chain (PEM) to serve instead of one from the internal CA", EnvVars: []string{"PAMD_TLS_CERT"}},
			&cli.StringFlag{Name: "tls-key", Usage: "the private key (PEM) of --tls-cert", EnvVars: []string{"PAMD_TLS_KEY"}},
			&cli.DurationFlag{Name: "gateway-cert-lifetime", Value: 24 * time.Hour, Usage: "how long a gateway's certificate is valid; gateways renew it at half of that", EnvVars: []string{"PAMD_GATEWAY_CERT_LIFETIME"}},
			rotationCheckFlag(),
			envOnlyFlag("request-webhook", "PAMD_REQUEST_WEBHOOK", "URL told of new access requests: a JSON POST with a Slack-compatible text field, retried"),
			&cli.StringFlag{Name: "metrics-listen", Usage: "plain-HTTP ADDR serving /metrics, /healthz and /readyz with no login (keep it private; /metrics on the main port needs an admin or auditor token)", EnvVars: []string{"PAMD_METRICS_LISTEN"}},
			&cli.StringFlag{Name: "audit-anchor", Usage: "FILE or syslog: write the audit log's head (SEQ:HASH) there as it moves, outside the store, for pamd audit verify --expect", EnvVars: []string{"PAMD_AUDIT_ANCHOR"}},
			&cli.DurationFlag{Name: "audit-anchor-every", Value: time.Minute, Usage: "how often --audit-anchor looks for a new head", EnvVars: []string{"PAMD_AUDIT_ANCHOR_EVERY"}},
		}, logFlags("info")...),
		Before:      noArgsBut("rotate-master-key"),
		Action:      a.runServer,
		Subcommands: []*cli.Command{a.rotateMasterKeyCommand()},
	}
}

// envOnlyFlag is a secret setting that is read from its environment
// variable only: a value on the command line would show in ps and in the
// shell's history, so one is refused.
func envOnlyFlag(name, env, usage string) *cli.StringFlag {
	return &cli.StringFlag{
		Name: name, EnvVars: []string{env}, Usage: usage + " (environment only, never on the command line)",
		Action: func(_ *cli.Context, v string) error {
			if v != os.Getenv(env) {
				return usageError("--%s: set %s in the environment instead (a command line shows in ps)", name, env)
			}
			return nil
		},
	}
}

func rotationCheckFlag() *cli.DurationFlag {
	return &cli.DurationFlag{Name: "rotation-check", Value: 30 * time.Second, EnvVars: []string{"PAMD_ROTATION_CHECK"},
		Usage: "how often to look for scheduled and interrupted credential rotations"}
}

func (a *app) runServer(c *cli.Context) error {
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	cfg := server.Config{
		DataDir: c.String("data-dir"), Listen: c.String("listen"), PublicURL: c.String("public-url"),
		MasterKeyFile: c.String("master-key-file"), MasterKey: c.String("master-key"),
		TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"), AdminPassword: c.String("admin-password"),
		Version: a.version, Logger: log, Out: a.stdout, RotationCheck: c.Duration("rotation-check"),
		GatewayCertLifetime: c.Duration("gateway-cert-lifetime"), MetricsListen: c.String("metrics-listen"),
		AuditAnchor: c.String("audit-anchor"), AuditAnchorEvery: c.Duration("audit-anchor-every"),
		RequestWebhook: c.String("request-webhook"),
	}
	return serve(c.Context, cfg, nil)
}

// serve listens and serves; started, when not nil, runs once the port is open.
func serve(ctx context.Context, cfg server.Config, started func(*server.Server, net.Addr)) error {
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Store().Close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	procs.Adapt(ctx, cfg.Logger) // the server, or pamd dev's server and gateway
	if started != nil {
		go started(srv, ln.Addr())
	}
	defer reloadOnHangup(ctx, srv)()
	return srv.Serve(ctx, ln)
}

// reloadOnHangup reloads the server's TLS certificate on each SIGHUP
// until the returned stop.
func reloadOnHangup(ctx context.Context, srv *server.Server) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				srv.ReloadTLS() // logs what it did
			case <-ctx.Done():
				return
			case <-quit: // Serve returned before ctx ended (it could not start)
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(quit); <-done }
}

func (a *app) rotateMasterKeyCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate-master-key",
		Usage: "re-wrap a stopped server's data key under a new master key (nothing else is rewritten)",
		Description: "The new key is read from --new-key-file, or made there when the file does not exist.\n" +
			"The change is one transaction: an interrupted run leaves a data file that opens with exactly one\n" +
			"of the two keys, and running the command again says which and finishes.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "./pamd-data", EnvVars: []string{"PAMD_DATA_DIR"}},
			&cli.StringFlag{Name: "master-key-file", Usage: "the current key's file, default DATA_DIR/master.key (PAMD_MASTER_KEY holds the key itself)", EnvVars: []string{"PAMD_MASTER_KEY_FILE"}},
			envOnlyFlag("master-key", "PAMD_MASTER_KEY", "the current master key itself, instead of the file"),
			&cli.StringFlag{Name: "new-key-file", Usage: "where the new key is (made 0600 when missing)"},
		},
		Before: before(noArgs, requireFlags("new-key-file")),
		Action: a.rotateMasterKey,
	}
}

func (a *app) rotateMasterKey(c *cli.Context) error {
	dir := c.String("data-dir")
	path := filepath.Join(dir, "pamd.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no data file in %s: %w", dir, err)
	}
	oldKey, oldFrom, err := currentMasterKey(c, dir)
	if err != nil {
		return err
	}
	newFile := c.String("new-key-file")
	newKey, created, err := store.LoadOrCreateMasterKey(newFile)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(a.stdout, "made a new master key in %s (mode 0600)\n", newFile)
	}
	if ok, err := store.KeyOpens(path, newKey); err != nil {
		return err
	} else if ok {
		fmt.Fprintf(a.stdout, "the data file already opens with the new key in %s (and not with %s): the rotation is done\n", newFile, oldFrom)
		return nil
	}
	if ok, err := store.KeyOpens(path, oldKey); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("the data file opens neither with %s nor with the new key in %s", oldFrom, newFile)
	}
	proxy.PauseForTest(slog.New(slog.NewTextHandler(a.stderr, nil)), "rekey")
	if err := store.Rekey(path, oldKey, newKey); err != nil {
		return fmt.Errorf("%w; the data file still opens with %s", err, oldFrom)
	}
	fmt.Fprintf(a.stdout, "the data file now opens with the new key in %s only: start the server with --master-key-file %s "+
		"(or PAMD_MASTER_KEY), take a new backup, then destroy the old key and the backups made under it\n", newFile, newFile)
	return nil
}

// currentMasterKey is the key the server would start with, and where it
// came from (for messages; never the key itself).
func currentMasterKey(c *cli.Context, dir string) ([]byte, string, error) {
	if text := c.String("master-key"); text != "" {
		k, err := store.ParseMasterKey(text)
		if err != nil {
			return nil, "", fmt.Errorf("PAMD_MASTER_KEY: %w", err)
		}
		return k, "PAMD_MASTER_KEY", nil
	}
	file := c.String("master-key-file")
	if file == "" {
		file = filepath.Join(dir, "master.key")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("the current master key: %w", err)
	}
	k, err := store.ParseMasterKey(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", file, err)
	}
	return k, file, nil
}
