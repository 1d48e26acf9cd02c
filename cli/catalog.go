package cli

import (
	"github.com/urfave/cli/v2"
)

func (a *app) lsCommand() *cli.Command {
	return &cli.Command{Name: "ls", Usage: "list the resources and accounts you may access", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.ls}
}

func (a *app) ls(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Catalog(c.Context)
	if err != nil {
		return err
	}
	rows := [][]string{}
	for _, e := range out {
		gw := e.Gateway
		if e.GatewayGroup != "" {
			gw = "group " + e.GatewayGroup
		}
		if !e.GatewayOnline {
			gw += " (offline)"
		}
		longest := e.MaxDuration
		switch {
		case !e.GrantEnds.IsZero():
			longest = "approved until " + ts(e.GrantEnds)
		case e.OnRequest:
			longest += " on request"
		}
		rows = append(rows, []string{e.Resource + "/" + e.Account, e.Type, dash(e.Username), gw, longest, yesNo(e.RequireMFA), yesNo(e.RequireReason)})
	}
	return printList(c, out, []string{"TARGET", "TYPE", "USERNAME", "GATEWAY", "MAX", "MFA", "REASON"}, rows)
}
