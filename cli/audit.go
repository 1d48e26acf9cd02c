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
		{Name: "verify", Usage: "check the hash chain; exits 1 at the first broken link, or when it does not hold the --expect head", Flags: []cli.Flag{
			&cli.StringFlag{Name: "expect", Usage: "SEQ:HASH from an earlier pamd audit head, kept outside pamd: a store rolled back to an older copy fails"},
			outputFlag(),
		}, Before: noArgs, Action: a.auditVerify},
		{Name: "head", Usage: "print the newest event's SEQ:HASH, to keep outside pamd for pamd audit verify --expect", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.auditHead},
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
	v, err := client.VerifyAudit(c.Context, c.String("expect"))
	if err != nil {
		return err
	}
	switch {
	case jsonOutput(c):
		printJSON(a.stdout, v)
	case v.OK && v.Holds:
		fmt.Fprintf(a.stdout, "audit chain intact: %d events verified, and it holds %s\n", v.Events, v.Expected)
	case v.OK:
		fmt.Fprintf(a.stdout, "audit chain intact: %d events verified\n", v.Events)
	}
	switch {
	case !v.OK && v.Seq == 0:
		return cli.Exit(fmt.Sprintf("audit check failed: %s (%d events verified)", v.Reason, v.Events), 1)
	case !v.OK:
		return cli.Exit(fmt.Sprintf("audit chain broken at event %d: %s (%d events before it verified)", v.Seq, v.Reason, v.Events), 1)
	}
	return nil
}

func (a *app) auditHead(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	h, err := client.AuditHead(c.Context)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, h)
	}
	fmt.Fprintf(a.stdout, "%d:%s\n", h.Seq, h.Hash)
	return nil
}
