package cli

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) gatewaysCommand() *cli.Command {
	return &cli.Command{Name: "gateways", Usage: "enroll, list and revoke gateways", Subcommands: []*cli.Command{
		{Name: "token", Usage: "create a one-time enrollment token", Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "the gateway's name (required)"},
			&cli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "how long the token stays valid (at most 24h)"},
			&cli.BoolFlag{Name: "replace", Usage: "enroll a new gateway in place of an enrolled one of that name; its certificate stops working when the new one enrolls"},
			outputFlag(),
		}, Before: before(noArgs, requireFlags("name")), Action: a.gatewaysToken},
		{Name: "list", Usage: "list gateways", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.gatewaysList},
		{Name: "revoke", Usage: "revoke a gateway's certificate: it is disconnected at once and cannot reconnect", ArgsUsage: "NAME", Action: a.gatewaysRevoke},
	}}
}

func (a *app) gatewaysToken(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	req := api.GatewayTokenRequest{Name: c.String("name"), TTL: c.Duration("ttl").String(), Replace: c.Bool("replace")}
	out, err := client.CreateGatewayToken(c.Context, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "%s\n\nvalid until %s, once. On the gateway host run:\n  %s\n", out.Token, ts(out.ExpiresAt), out.Command)
	return nil
}

func (a *app) gatewaysList(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Gateways(c.Context)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, g := range out {
		state := "offline"
		if g.Online {
			state = "online"
		}
		if !g.RevokedAt.IsZero() {
			state = "revoked"
		}
		rows = append(rows, []string{g.Name, state, dash(g.Version), dash(g.RemoteAddr), ts(g.LastSeen), ts(g.CertExpiresAt), backlogText(g.Backlog)})
	}
	return printList(c, out, []string{"NAME", "STATUS", "VERSION", "REMOTE", "LAST SEEN", "CERT EXPIRES", "BACKLOG"}, rows)
}

func (a *app) gatewaysRevoke(c *cli.Context) error {
	name, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	if err := client.RevokeGateway(c.Context, name); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "gateway %s revoked; to enroll it again: pamd gateways token --name %s --replace\n", name, name)
	return nil
}

// backlogText shows a gateway's records not yet uploaded: "0", "12 (3.4 MiB)",
// or "-" while unknown (offline, or a gateway too old to report it).
func backlogText(b *api.GatewayBacklog) string {
	switch {
	case b == nil:
		return "-"
	case b.Records == 0:
		return "0"
	case b.Bytes >= 1<<20:
		return fmt.Sprintf("%d (%.1f MiB)", b.Records, float64(b.Bytes)/(1<<20))
	default:
		return fmt.Sprintf("%d (%.1f KiB)", b.Records, float64(b.Bytes)/(1<<10))
	}
}
