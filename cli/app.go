package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/internal/buildinfo"
	"github.com/pamd/pamd/protocol/printable"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

// Streams are the process's standard streams. The CLI reads and writes
// only these, so a test can run it in process.
type Streams struct {
	In  io.Reader // --*-stdin flags and prompts; prompts need a terminal (*os.File)
	Out io.Writer // what a command prints: tables, JSON, ready-to-paste lines
	Err io.Writer // errors, warnings, prompts and the roles' logs
}

// Run runs the command line args (args[0] is the program's name) and
// returns the process's exit status: 0 success, 1 failure, 2 bad usage
// (an unknown command or flag, a bad value, missing or extra arguments),
// or the status a command asked for (pamd ssh passes the remote command's
// on). The error, if any, is printed to s.Err. version is the release tag
// linked into the binary, or empty: then the build info's (the commit) is
// what --version prints and the roles report.
func Run(ctx context.Context, version string, args []string, s Streams) int {
	if len(args) == 0 {
		args = []string{"pamd"}
	}
	a := newApp(version, s)
	a.args = args
	if !completing(args) { // completion wants the words as typed, its flag last
		args = interspersed(a.cli, args)
	}
	err := a.cli.RunContext(ctx, args)
	if err == nil && a.unknown != nil {
		err = a.unknown
	}
	return a.exitCode(err)
}

// App returns the pamd command line application on the given streams.
// Run is what main calls; App is for looking at the commands (help, tests).
func App(version string, s Streams) *cli.App { return newApp(version, s).cli }

// app is one run of the CLI: its streams and what every action shares.
// Actions are its methods.
type app struct {
	version string
	stdin   io.Reader
	in      *bufio.Reader // stdin, for reading lines
	stdout  io.Writer
	stderr  io.Writer
	cli     *cli.App
	unknown error    // an unknown command was named (urfave/cli only calls CommandNotFound)
	args    []string // what Run was given: completion reads the words typed (completion.go)
}

func newApp(version string, s Streams) *app {
	if s.In == nil {
		s.In = eofReader{}
	}
	if s.Out == nil {
		s.Out = io.Discard
	}
	if s.Err == nil {
		s.Err = io.Discard
	}
	version = buildinfo.Version(version)
	a := &app{version: version, stdin: s.In, in: bufio.NewReader(s.In), stdout: s.Out, stderr: s.Err}
	a.cli = &cli.App{
		Name:                 "pamd",
		HelpName:             "pamd",
		Usage:                "privileged access to SSH, SQL Server and MongoDB without sharing credentials",
		Version:              version,
		EnableBashCompletion: true,
		Reader:               s.In,
		Writer:               s.Out,
		ErrWriter:            s.Err,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config-dir", Usage: "where the CLI keeps its login (default: pamd in the user's config dir)", EnvVars: []string{"PAMD_CONFIG_DIR"}},
		},
		Commands: []*cli.Command{
			a.serverCommand(), a.gatewayCommand(), a.devCommand(), a.connectCommand(), a.sshCommand(),
			a.loginCommand(), a.logoutCommand(), a.whoamiCommand(), a.passwdCommand(), a.mfaCommand(),
			a.usersCommand(), a.rolesCommand(), a.gatewaysCommand(), a.resourcesCommand(), a.accountsCommand(),
			a.lsCommand(), a.sessionsCommand(), a.requestsCommand(), a.auditCommand(), a.backupCommand(), a.completionCommand(),
			a.ssoCommand(), a.caCommand(),
		},
		OnUsageError:    onUsageError,
		CommandNotFound: a.commandNotFound,
		ExitErrHandler:  func(*cli.Context, error) {}, // Run prints and returns the status
	}
	forEachCommand(a.cli.Commands, func(c *cli.Command) { c.OnUsageError = onUsageError })
	a.cli.BashComplete = a.completeArg(nil, nil)
	a.setCompletions(a.cli.Commands, "")
	return a
}

// eofReader is standard input when there is none.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func forEachCommand(cmds []*cli.Command, f func(*cli.Command)) {
	for _, c := range cmds {
		f(c)
		forEachCommand(c.Subcommands, f)
	}
}

// onUsageError turns urfave/cli's flag errors (an unknown flag, a missing
// or malformed value) into usage errors: exit status 2.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError("%v (see %s --help)", err, c.Command.HelpName)
}

// commandNotFound remembers an unknown command or subcommand for Run:
// urfave/cli ignores what this returns.
func (a *app) commandNotFound(c *cli.Context, name string) {
	a.unknown = usageError("unknown command %q (see %s --help)", name, c.Command.HelpName)
}

// exitCode prints err for the person and maps it to the process's status:
// 0 success, 1 failure, 2 bad usage, or the status a command asked for.
// The message is escaped: it may quote a target's or a user's text.
func (a *app) exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(a.stderr, "pamd:", printable.Escape(msg))
		}
		return ec.ExitCode()
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		fmt.Fprintln(a.stderr, "pamd:", printable.Escape(ae.Message))
		return 1
	}
	fmt.Fprintln(a.stderr, "pamd:", printable.Escape(err.Error()))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

var errUsage = errors.New("usage")

// usageError is bad usage: exit status 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// configDir is where the login is kept: --config-dir (or PAMD_CONFIG_DIR),
// else pamd in the user's config dir.
func configDir(c *cli.Context) (string, error) {
	return apiclient.ConfigDir(c.String("config-dir"))
}

// loggedIn returns the saved login and a client for it.
func loggedIn(c *cli.Context) (*apiclient.Login, *apiclient.Client, error) {
	dir, err := configDir(c)
	if err != nil {
		return nil, nil, err
	}
	l, err := apiclient.LoadLogin(dir)
	if err != nil {
		return nil, nil, err
	}
	if time.Now().After(l.ExpiresAt) {
		return nil, nil, fmt.Errorf("your login to %s expired at %s: run pamd login", l.Server, ts(l.ExpiresAt))
	}
	client, err := l.Client()
	if client != nil {
		client.OnPins = func(served, current, next string) { followPins(c, dir, l, served, current, next) }
	}
	return l, client, err
}

var pinsMu sync.Mutex

// followPins keeps the saved login's pins in step with a rotation of the
// server's CA, telling the user (once) of a new fingerprint it trusts.
func followPins(c *cli.Context, dir string, l *apiclient.Login, served, current, next string) {
	pinsMu.Lock() // a command's calls may run at once (pamd connect's)
	defer pinsMu.Unlock()
	changed, learned := l.LearnPins(served, current, next)
	if !changed {
		return
	}
	if err := l.Save(dir); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "pamd: the server's CA is being rotated, but the login could not keep its new fingerprint: %v\n", err)
		return
	}
	if learned != "" {
		fmt.Fprintf(c.App.ErrWriter, "pamd: the server's CA is being rotated; its new fingerprint is %s, now trusted too\n", learned)
	}
}

// loginPins gives a long-running command's tunnel the pins to dial with
// now: the saved login's (which this or another pamd command updated
// following a rotation of the server's CA), else the ones it started with.
func loginPins(c *cli.Context, login *apiclient.Login) func() (current, next string) {
	return func() (string, string) {
		pinsMu.Lock()
		defer pinsMu.Unlock()
		if dir, err := configDir(c); err == nil {
			if l, err := apiclient.LoadLogin(dir); err == nil && l.Server == login.Server && l.Fingerprint != "" {
				return l.Fingerprint, l.NextFingerprint
			}
		}
		return login.Fingerprint, login.NextFingerprint
	}
}

// client returns an API client for the saved login.
func client(c *cli.Context) (*apiclient.Client, error) {
	_, cl, err := loggedIn(c)
	return cl, err
}
