package cli

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/internal/httpconnect"
	"github.com/pamd/pamd/internal/procs"
)

func (a *app) gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "run a gateway inside the private network (enrolls once with --token)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "token", Usage: "one-time enrollment token from pamd gateways token", EnvVars: []string{"PAMD_GATEWAY_TOKEN"}},
			&cli.StringFlag{Name: "data-dir", Value: "./pamd-gateway", EnvVars: []string{"PAMD_GATEWAY_DATA_DIR"}},
			&cli.DurationFlag{Name: "record-batch-delay", Value: 200 * time.Millisecond, Usage: "how long session records wait to be uploaded together (they are on disk meanwhile)", EnvVars: []string{"PAMD_RECORD_BATCH_DELAY"}},
			proxyFlag(),
			&cli.StringFlag{Name: "gateway-group", Usage: "the gateway group `G` the server has this gateway in (pamd gateways token/set --group G); only checked: the server refuses a gateway that names another group than its own", EnvVars: []string{"PAMD_GATEWAY_GROUP"}},
			&cli.StringFlag{Name: "health-listen", Usage: "plain-HTTP ADDR serving /healthz, /readyz (connected to the server) and /metrics", EnvVars: []string{"PAMD_GATEWAY_HEALTH_LISTEN"}},
		}, logFlags("info")...),
		Before: noArgs,
		Action: a.runGateway,
	}
}

func (a *app) runGateway(c *cli.Context) error {
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	procs.Adapt(c.Context, log)
	return gateway.Run(c.Context, gateway.Config{DataDir: c.String("data-dir"), Token: c.String("token"), Version: a.version, Logger: log,
		RecordBatchDelay: c.Duration("record-batch-delay"), Proxy: c.String("proxy"), HealthListen: c.String("health-listen"),
		Group: c.String("gateway-group")})
}

// proxyFlag is --proxy. A URL with a password is refused on the command
// line, where ps would show it: the environment holds that one.
func proxyFlag() *cli.StringFlag {
	const env = "PAMD_GATEWAY_PROXY"
	return &cli.StringFlag{
		Name: "proxy", EnvVars: []string{env},
		Usage: "http://[USER:PASSWORD@]HOST:PORT: reach the server through this HTTP proxy (CONNECT); default: https_proxy/HTTPS_PROXY and NO_PROXY",
		Action: func(_ *cli.Context, v string) error {
			u, err := httpconnect.Parse(v)
			if err != nil {
				return usageError("--proxy: %v", err)
			}
			if _, ok := u.User.Password(); ok && v != os.Getenv(env) {
				return usageError("--proxy: a password on the command line shows in ps: set %s (or HTTPS_PROXY) in the environment instead", env)
			}
			return nil
		},
	}
}
