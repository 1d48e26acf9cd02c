package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/internal/procs"
	"github.com/pamd/pamd/proxy/local"
	"github.com/pamd/pamd/server/api"
)

// clientStopGrace is how long a client pamd connect --exec started has to
// exit after it was asked to (the session ended, pamd got SIGTERM) before
// it is killed.
const clientStopGrace = 5 * time.Second

// connectExec is pamd connect --exec [CLIENT] [-- ARGS...]: the local
// listener as pamd connect opens it, and the resource's native client run
// against it. The session ends when the client exits, and pamd exits with
// the client's status.
//
// Signals: Ctrl-C on a terminal reaches the client too (one process
// group), and clients use it to cancel a query or a line, so an interrupt
// does not end the session; SIGTERM is passed on to the client, and the
// session ends when it exits.
func (a *app) connectExec(c *cli.Context) error {
	if c.NArg() < 1 {
		return usageError("want RESOURCE/ACCOUNT [CLIENT] [-- ARGS...] (see pamd ls)")
	}
	res, acct, err := parseTarget(c.Args().First())
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return usageError("--exec runs a client on this terminal; it prints no JSON")
	}
	if p := c.Int("port"); p < 0 || p > 65535 {
		return usageError("--port %d: want 1 to 65535", p)
	}
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	login, client, grant, err := a.openSession(c, res, acct)
	if err != nil {
		return err
	}
	if len(grant.ClientCommands) == 0 {
		return a.endAfter(c, grant, fmt.Errorf("pamd: %s resources have no native client for --exec: run pamd connect %s/%s and point your client at the port it prints", grant.Session.ResourceType, res, acct))
	}
	named, extra := pickArgs(c.Args().Tail(), grant.ClientCommands)

	// The session lives until the client exits or the server ends it,
	// not until pamd's own context (SIGINT) ends.
	runCtx, endSession := context.WithCancel(context.WithoutCancel(c.Context))
	defer endSession()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	// child and startErr are set by Ready, on local.Run's goroutine; the
	// signal loop reads child under mu, the rest after Run returned.
	var (
		mu       sync.Mutex
		child    *exec.Cmd
		startErr error
	)
	exited := make(chan error, 1)
	cfg := localConfig(c, login, client, grant, log, a.stderr)
	cfg.Ready = func(addr *net.TCPAddr) {
		fill, usable := a.clientTemplates(c, grant, addr)
		argv, err := chooseClient(grant.ClientCommands, named, fill, usable, exec.LookPath)
		if err != nil {
			startErr = err
			endSession()
			return
		}
		argv = append(argv, extra...)
		fmt.Fprintf(a.stderr, "pamd: session %s to %s/%s until %s; running %s\n", grant.Session.ID, res, acct,
			grant.Session.ExpiresAt.Local().Format("15:04:05 MST"), strings.Join(argv, " "))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
		if err := cmd.Start(); err != nil {
			startErr = fmt.Errorf("pamd: cannot run %s: %w", argv[0], err)
			endSession()
			return
		}
		mu.Lock()
		child = cmd
		mu.Unlock()
		go func() {
			exited <- cmd.Wait()
			endSession()
		}()
	}
	ran := make(chan error, 1)
	procs.Adapt(runCtx, cfg.Logger)
	go func() { ran <- local.Run(runCtx, cfg) }()

	var runErr error
	waiting := true
	for waiting {
		select {
		case s := <-sigs:
			mu.Lock()
			if s == syscall.SIGTERM && child != nil {
				stopClient(child)
			}
			mu.Unlock()
		case runErr = <-ran:
			waiting = false
		}
	}
	if startErr != nil {
		return startErr
	}
	if child == nil { // the tunnel never came up
		return runErr
	}
	var ended *local.Ended
	if errors.As(runErr, &ended) {
		// The server ended the session under the client: stop it, then say why.
		stopClient(child)
		waitClient(child, exited)
		return cli.Exit("session "+grant.Session.ID+" ended: "+ended.Reason, 1)
	}
	err = <-exited
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return cli.Exit("", max(exit.ExitCode(), 1))
	case err != nil:
		return err
	}
	return runErr
}

// pickArgs splits what follows RESOURCE/ACCOUNT into the client named (if
// the first word is one of the commands' programs) and the arguments for it.
func pickArgs(rest []string, cmds [][]string) (named string, extra []string) {
	if len(rest) > 0 && slices.ContainsFunc(cmds, func(cmd []string) bool { return cmd[0] == rest[0] }) {
		named, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	return named, rest
}

// chooseClient is the command to run: the one named, else the first whose
// program is on PATH, with its templates filled in.
func chooseClient(cmds [][]string, named string, fill func(string) string, usable func(string) bool, lookPath func(string) (string, error)) ([]string, error) {
	var programs []string
	for _, cmd := range cmds {
		if len(cmd) == 0 || !usable(strings.Join(cmd, " ")) {
			continue
		}
		programs = append(programs, cmd[0])
		if named != "" && cmd[0] != named {
			continue
		}
		if _, err := lookPath(cmd[0]); err != nil {
			if named != "" {
				return nil, fmt.Errorf("pamd: %s is not on PATH: install it, or run pamd connect without --exec and point your client at the port", named)
			}
			continue
		}
		argv := make([]string, len(cmd))
		for i, a := range cmd {
			argv[i] = fill(a)
		}
		return argv, nil
	}
	if len(programs) == 0 {
		return nil, errors.New("pamd: no native client can be run for this session (its files could not be written; see the messages above)")
	}
	return nil, fmt.Errorf("pamd: none of %s is on PATH: install one, or run pamd connect without --exec and point your client at the port", strings.Join(programs, ", "))
}

// stopClient asks the client to exit (SIGTERM; on Windows, where there is
// no such signal, it is killed).
func stopClient(cmd *exec.Cmd) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		cmd.Process.Kill()
	}
}

// waitClient waits for the client to exit after stopClient, and kills it
// when it takes longer than clientStopGrace.
func waitClient(cmd *exec.Cmd, exited chan error) {
	select {
	case <-exited:
	case <-time.After(clientStopGrace):
		cmd.Process.Kill()
		<-exited
	}
}

// endAfter ends the session just opened (nothing will use it) and returns err.
func (a *app) endAfter(c *cli.Context, grant api.SessionGrant, err error) error {
	if _, client, lerr := loggedIn(c); lerr == nil {
		client.TerminateSession(c.Context, grant.Session.ID)
	}
	return err
}
