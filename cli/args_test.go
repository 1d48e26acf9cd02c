package cli

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestInterspersed(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "config-dir"}},
		Commands: []*cli.Command{
			{Name: "connect", Flags: []cli.Flag{&cli.DurationFlag{Name: "duration"}, &cli.StringFlag{Name: "output", Aliases: []string{"o"}}}},
			{Name: "accounts", Subcommands: []*cli.Command{
				{Name: "add", Flags: []cli.Flag{&cli.StringFlag{Name: "username"}, &cli.BoolFlag{Name: "password-stdin"}}},
			}},
		},
	}
	tests := []struct{ in, want []string }{
		{[]string{"pamd", "connect", "db/ops", "--duration", "2h", "-o", "json"},
			[]string{"pamd", "connect", "--duration", "2h", "-o", "json", "db/ops"}},
		{[]string{"pamd", "--config-dir", "/x", "accounts", "add", "db/ops", "--username", "u", "--password-stdin"},
			[]string{"pamd", "--config-dir", "/x", "accounts", "add", "--username", "u", "--password-stdin", "db/ops"}},
		{[]string{"pamd", "connect", "db/ops", "--", "-x", "--duration"},
			[]string{"pamd", "connect", "db/ops", "--", "-x", "--duration"}},
		{[]string{"pamd", "connect", "--duration=1h", "db/ops"},
			[]string{"pamd", "connect", "--duration=1h", "db/ops"}},
		{[]string{"pamd", "nosuch", "a", "--b"}, []string{"pamd", "nosuch", "a", "--b"}},
	}
	for _, tt := range tests {
		if got := interspersed(app, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("interspersed(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
