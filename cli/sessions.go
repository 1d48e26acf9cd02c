package cli

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
)

func (a *app) sessionsCommand() *cli.Command {
	return &cli.Command{Name: "sessions", Usage: "list, inspect, terminate and replay access sessions", Subcommands: []*cli.Command{
		{Name: "list", Usage: "list sessions (yours, or all for admins and auditors)", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "active"}, outputFlag(),
		}, Before: noArgs, Action: a.sessionsList},
		{Name: "show", ArgsUsage: "ID", Usage: "show a session and its connections", Flags: []cli.Flag{outputFlag()}, Action: a.sessionsShow},
		{Name: "terminate", ArgsUsage: "ID", Usage: "end an active session now, cutting its connections", Action: a.sessionsTerminate},
		{Name: "logs", ArgsUsage: "ID", Usage: "print what a session did: commands, exit status, file transfers, terminal I/O", Flags: []cli.Flag{outputFlag()}, Action: a.sessionsLogs},
		{Name: "play", ArgsUsage: "ID", Usage: "replay a session's terminal with its timing", Flags: []cli.Flag{
			&cli.Float64Flag{Name: "speed", Value: 1, Usage: "playback speed factor"},
			&cli.DurationFlag{Name: "max-wait", Value: 2 * time.Second, Usage: "longest pause between events (0: keep pauses as recorded)"},
		}, Action: a.sessionsPlay},
		{Name: "export", ArgsUsage: "ID", Usage: "write a session's terminal recording for the asciinema player", Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "asciicast", Usage: "asciicast (v2)"},
			&cli.StringFlag{Name: "out", Usage: "file to write", DefaultText: "standard output"},
		}, Action: a.sessionsExport},
	}}
}

func (a *app) sessionsList(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Sessions(c.Context, c.Bool("active"))
	if err != nil {
		return err
	}
	var rows [][]string
	for _, s := range out {
		state := "active"
		if !s.Active {
			state = dash(s.Ended)
		}
		rows = append(rows, []string{s.ID, s.User, s.Resource + "/" + s.Account, ts(s.CreatedAt), ts(s.ExpiresAt), state})
	}
	return printList(c, out, []string{"ID", "USER", "TARGET", "CREATED", "EXPIRES", "STATE"}, rows)
}

func (a *app) sessionsShow(c *cli.Context) error {
	id, client, err := argAndClient(c, "ID")
	if err != nil {
		return err
	}
	s, err := client.Session(c.Context, id)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, s)
	}
	w := a.stdout
	printEscaped(w, "id:        %s\nuser:      %s\ntarget:    %s/%s\nreason:    %s\ncreated:   %s\nexpires:   %s\nended:     %s %s\nactive:    %s\nrecorded:  %s\n",
		s.ID, s.User, s.Resource, s.Account, dash(s.Reason), ts(s.CreatedAt), ts(s.ExpiresAt), ts(s.EndedAt), s.Ended, yesNo(s.Active), yesNo(s.Recorded))
	if s.RequestID != "" {
		printEscaped(w, "request:   %s (%s)\n", s.RequestID, dash(s.RequestReason))
	}
	fmt.Fprintln(w, "connections:")
	for _, cn := range s.Connections {
		printEscaped(w, "  %s  from %s  via %s  %s → %s  up %d B  down %d B  %s\n", cn.ID, dash(cn.ClientAddr), dash(cn.Gateway), ts(cn.StartedAt), ts(cn.EndedAt), cn.BytesUp, cn.BytesDown, cn.Error)
	}
	return nil
}

func (a *app) sessionsTerminate(c *cli.Context) error {
	id, client, err := argAndClient(c, "ID")
	if err != nil {
		return err
	}
	if err := client.TerminateSession(c.Context, id); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "session %s terminated\n", id)
	return nil
}
