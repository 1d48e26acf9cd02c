package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server"
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
		}, logFlags("info")...),
		Before: noArgs,
		Action: a.runServer,
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
		GatewayCertLifetime: c.Duration("gateway-cert-lifetime"),
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
	if started != nil {
		go started(srv, ln.Addr())
	}
	return srv.Serve(ctx, ln)
}
