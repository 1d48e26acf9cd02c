package cli

import (
	"io"
	"log/slog"

	"github.com/urfave/cli/v2"
)

// logFlags are --log-level and --log-format, on every role (server,
// gateway, dev, connect, ssh); level is the role's default.
func logFlags(level string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: level, Usage: "debug, info, warn or error", EnvVars: []string{"PAMD_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"PAMD_LOG_FORMAT"}},
	}
}

// newLogger is the role's logger on w, as --log-level and --log-format say.
func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch v := c.String("log-level"); v {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageError("--log-level %q: want debug, info, warn or error", v)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch v := c.String("log-format"); v {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usageError("--log-format %q: want text or json", v)
	}
}
