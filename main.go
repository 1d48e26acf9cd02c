// Command pamd is privileged access management in one binary: the server,
// the gateway and the client, chosen by subcommand. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/protocol/printable"
	"github.com/pamd/pamd/server/api"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	app := &cli.App{
		Name:                 "pamd",
		Usage:                "privileged access to SSH, SQL Server and MongoDB without sharing credentials",
		Version:              version,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config-dir", Usage: "where the CLI keeps its login", EnvVars: []string{"PAMD_CONFIG_DIR"}},
		},
		Before: func(c *cli.Context) error {
			if d := c.String("config-dir"); d != "" {
				os.Setenv("PAMD_CONFIG_DIR", d)
			}
			return nil
		},
		Commands:       append(roleCommands(), adminCommands()...),
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.RunContext(ctx, interspersed(app, os.Args))
	stop()
	os.Exit(exitCode(err))
}

// exitCode prints err for the person and maps it to the process's status:
// 0 success, 1 failure, 2 bad usage, or the status a command asked for.
// The message is escaped: it may quote a target's or a user's text.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "pamd:", printable.Escape(msg))
		}
		return ec.ExitCode()
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		fmt.Fprintln(os.Stderr, "pamd:", printable.Escape(ae.Message))
		return 1
	}
	fmt.Fprintln(os.Stderr, "pamd:", printable.Escape(err.Error()))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}
