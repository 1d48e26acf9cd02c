package cli

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/gateway"
)

func (a *app) gatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "run a gateway inside the private network (enrolls once with --token)",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "token", Usage: "one-time enrollment token from pamd gateways token", EnvVars: []string{"PAMD_GATEWAY_TOKEN"}},
			&cli.StringFlag{Name: "data-dir", Value: "./pamd-gateway", EnvVars: []string{"PAMD_GATEWAY_DATA_DIR"}},
			&cli.DurationFlag{Name: "record-batch-delay", Value: 200 * time.Millisecond, Usage: "how long session records wait to be uploaded together (they are on disk meanwhile)", EnvVars: []string{"PAMD_RECORD_BATCH_DELAY"}},
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
	return gateway.Run(c.Context, gateway.Config{DataDir: c.String("data-dir"), Token: c.String("token"), Version: a.version, Logger: log,
		RecordBatchDelay: c.Duration("record-batch-delay")})
}
