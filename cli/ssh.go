package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/internal/procs"
	"github.com/pamd/pamd/proxy/local"
)

func (a *app) sshCommand() *cli.Command {
	return &cli.Command{
		Name:      "ssh",
		Usage:     "open a shell on an ssh resource, or run a command (after --), through pamd",
		ArgsUsage: "RESOURCE/ACCOUNT [-- COMMAND ARGS...]",
		Flags:     append(sessionFlags(), logFlags("error")...),
		Action:    a.ssh,
	}
}

func (a *app) ssh(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return usageError("want RESOURCE/ACCOUNT (see pamd ls)")
	}
	target, command := args[0], args[1:]
	if len(command) > 0 && command[0] == "--" {
		command = command[1:]
	}
	res, acct, err := parseTarget(target)
	if err != nil {
		return err
	}
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	login, client, grant, err := a.openSession(c, res, acct)
	if err != nil {
		return err
	}
	if grant.SSHHostKey == "" {
		return fmt.Errorf("%s is a %s resource; use pamd connect", res, grant.Session.ResourceType)
	}
	stdin, err := a.stdinFile()
	if err != nil {
		return err
	}
	tun, err := local.Dial(c.Context, local.Config{
		Server: client.HostPort(), Fingerprint: login.Fingerprint, NextFingerprint: login.NextFingerprint, Pins: loginPins(c, login),
		SessionID: grant.Session.ID, Credential: grant.Credential,
		Logger: log,
	})
	if err != nil {
		return err
	}
	procs.Adapt(c.Context, log)
	status, err := local.RunSSH(c.Context, local.SSHConfig{
		Tunnel: tun, HostKey: grant.SSHHostKey, User: grant.Username, Command: command,
		Stdin: stdin, Stdout: a.stdout, Stderr: a.stderr,
	})
	select {
	case reason := <-tun.Ended():
		return cli.Exit("session "+grant.Session.ID+" ended: "+reason, max(status, 1))
	default:
	}
	tun.End()
	if err != nil {
		return cli.Exit(err.Error(), max(status, 1))
	}
	if status != 0 {
		return cli.Exit("", status)
	}
	return nil
}
