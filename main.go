// Command pamd is privileged access management in one binary: the server,
// the gateway and the client, chosen by subcommand (package cli). See
// README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pamd/pamd/cli"
)

// version is the release tag scripts/release links in with -ldflags
// "-X main.version=..."; empty otherwise, and the CLI takes the version
// from the build info instead (internal/buildinfo).
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, version, os.Args, cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
