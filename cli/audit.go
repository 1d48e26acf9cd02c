package cli

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/apiclient"
)

func (a *app) auditCommand() *cli.Command {
	return &cli.Command{Name: "audit", Usage: "read and verify the audit log", Subcommands: []*cli.Command{
		{Name: "list", Usage: "list audit events, oldest first", Flags: []cli.Flag{
			&cli.DurationFlag{Name: "since", Usage: "only events newer than this, for example 24h"},
			&cli.StringFlag{Name: "user", Usage: "only events by this actor"},
			&cli.StringFlag{Name: "action", Usage: "only this action, or a family such as session"},
			&cli.IntFlag{Name: "limit", Value: 1000, Usage: "at most this many (the newest)"},
			outputFlag(),
		}, Before: noArgs, Action: a.auditList},
		{Name: "verify", Usage: "check the hash chain; exits 1 at the first broken link", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.auditVerify},
	}}
}

func (a *app) auditList(c *cli.Context) error {
	if c.Int("limit") <= 0 {
		return usageError("--limit %d: want a positive number", c.Int("limit"))
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.AuditEvents(c.Context, apiclient.AuditQuery{Since: c.Duration("since"), User: c.String("user"), Action: c.String("action"), Limit: c.Int("limit")})
	if err != nil {
		return err
	}
	var rows [][]string
	for _, e := range out {
		rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), ts(e.Time), e.Actor, e.Action, dash(e.Target), e.Outcome, dash(e.Source), e.Detail})
	}
	return printList(c, out, []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE", "DETAIL"}, rows)
}

func (a *app) auditVerify(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	v, err := client.VerifyAudit(c.Context)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		printJSON(a.stdout, v)
	} else if v.OK {
		fmt.Fprintf(a.stdout, "audit chain intact: %d events verified\n", v.Events)
	}
	if !v.OK {
		return cli.Exit(fmt.Sprintf("audit chain broken at event %d: %s (%d events before it verified)", v.Seq, v.Reason, v.Events), 1)
	}
	return nil
}
