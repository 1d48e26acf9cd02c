package cli

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/apiclient"
)

// interspersed lets flags follow positional arguments, as in
// "pamd connect db/ops --duration 2h": urfave/cli v2 stops reading flags at
// the first positional, so the flags of the final command are moved before
// its positionals. Everything from "--" on stays where it is.
func interspersed(app *cli.App, args []string) []string {
	out := []string{args[0]}
	rest := args[1:]
	cmds, flags := app.Commands, app.Flags
	found := false
	i := 0
	for i < len(rest) {
		tok := rest[i]
		if strings.HasPrefix(tok, "-") {
			out = append(out, tok)
			if takesValue(flags, tok) && i+1 < len(rest) {
				out = append(out, rest[i+1])
				i++
			}
			i++
			continue
		}
		c := findCommand(cmds, tok)
		if c == nil {
			break
		}
		out = append(out, tok)
		found, cmds, flags = true, c.Subcommands, c.Flags
		i++
		if len(cmds) == 0 {
			break
		}
	}
	if !found {
		return args
	}
	var fl, pos []string
	for ; i < len(rest); i++ {
		tok := rest[i]
		if tok == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if strings.HasPrefix(tok, "-") && tok != "-" {
			fl = append(fl, tok)
			if takesValue(flags, tok) && i+1 < len(rest) {
				fl = append(fl, rest[i+1])
				i++
			}
			continue
		}
		pos = append(pos, tok)
	}
	return append(append(out, fl...), pos...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// takesValue reports whether tok is a flag that consumes the next argument.
func takesValue(flags []cli.Flag, tok string) bool {
	if strings.Contains(tok, "=") {
		return false
	}
	name := strings.TrimLeft(tok, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// oneArg is the command's one positional argument.
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usageError("want one argument: %s", what)
	}
	return c.Args().First(), nil
}

// argAndClient is the start of most actions on one named thing: its one
// argument, then a client for the saved login.
func argAndClient(c *cli.Context, what string) (string, *apiclient.Client, error) {
	arg, err := oneArg(c, what)
	if err != nil {
		return "", nil, err
	}
	cl, err := client(c)
	return arg, cl, err
}

// noArgs is the Before of commands that take no positional argument.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("%s takes no arguments, got %q (see %s --help)", c.Command.HelpName, strings.Join(c.Args().Slice(), " "), c.Command.HelpName)
	}
	return nil
}

// noArgsBut is noArgs for a command that also has subcommands: their
// names pass (urfave/cli runs the parent's Before first).
func noArgsBut(subcommands ...string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if c.NArg() > 0 && slices.Contains(subcommands, c.Args().First()) {
			return nil
		}
		return noArgs(c)
	}
}

// requireOneOf is a Before that wants exactly one of two flags.
func requireOneOf(a, b string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		switch {
		case c.IsSet(a) && c.IsSet(b):
			return usageError("--%s and --%s: give one of the two (see %s --help)", a, b, c.Command.HelpName)
		case !c.IsSet(a) && !c.IsSet(b):
			return usageError("--%s or --%s is required (see %s --help)", a, b, c.Command.HelpName)
		}
		return nil
	}
}

// requireFlags is the Before of commands with flags that must be given:
// a missing one is bad usage (urfave/cli's Required would exit 1).
func requireFlags(names ...string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		for _, n := range names {
			if !c.IsSet(n) {
				return usageError("--%s is required (see %s --help)", n, c.Command.HelpName)
			}
		}
		return nil
	}
}

// splitTarget parses the one RESOURCE/ACCOUNT argument.
func splitTarget(c *cli.Context) (string, string, error) {
	if c.NArg() != 1 {
		return "", "", usageError("want one RESOURCE/ACCOUNT argument (see pamd ls)")
	}
	return parseTarget(c.Args().First())
}

func parseTarget(s string) (string, string, error) {
	res, acct, ok := strings.Cut(s, "/")
	if !ok || res == "" || acct == "" {
		return "", "", usageError("%q: want RESOURCE/ACCOUNT (see pamd ls)", s)
	}
	return res, acct, nil
}

// before runs fs in order, up to the first error.
func before(fs ...cli.BeforeFunc) cli.BeforeFunc {
	return func(c *cli.Context) error {
		for _, f := range fs {
			if err := f(c); err != nil {
				return err
			}
		}
		return nil
	}
}
