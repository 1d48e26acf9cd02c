package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) gatewaysCommand() *cli.Command {
	return &cli.Command{Name: "gateways", Usage: "enroll, list, revoke and remove gateways", Subcommands: []*cli.Command{
		{Name: "token", Usage: "create a one-time enrollment token", Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "the gateway's name (required)"},
			&cli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "how long the token stays valid (at most 24h)"},
			&cli.BoolFlag{Name: "replace", Usage: "enroll a new gateway in place of an enrolled one of that name; its certificate stops working when the new one enrolls"},
			&cli.StringFlag{Name: "group", Usage: "put the gateway in this gateway group: it serves (and receives the credentials of) the group's resources; with --replace, the new gateway is in this group, or in none without it"},
			outputFlag(),
		}, Before: before(noArgs, requireFlags("name")), Action: a.gatewaysToken},
		{Name: "set", Usage: "change an enrolled gateway: its gateway group (a connected gateway reconnects in its new group)", ArgsUsage: "NAME", Flags: []cli.Flag{
			&cli.StringFlag{Name: "group", Usage: "put the gateway in this gateway group: it serves (and receives the credentials of) the group's resources"},
			&cli.BoolFlag{Name: "no-group", Usage: "take the gateway out of its gateway group"},
			outputFlag(),
		}, Before: requireOneOf("group", "no-group"), Action: a.gatewaysSet},
		{Name: "list", Usage: "list gateways", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.gatewaysList},
		{Name: "revoke", Usage: "revoke a gateway's certificate: it is disconnected at once and cannot reconnect", ArgsUsage: "NAME", Action: a.gatewaysRevoke},
		{Name: "remove", Aliases: []string{"rm"}, ArgsUsage: "NAME", Usage: "delete a gateway: its tunnel is cut and it cannot reconnect; refused while resources name it, unless --move-to moves them", Flags: []cli.Flag{
			&cli.StringFlag{Name: "move-to", Usage: "the gateway that takes over the removed one's resources"},
			&cli.BoolFlag{Name: "force", Usage: "remove it even while it is connected (its tunnel is cut)"},
			outputFlag(),
		}, Action: a.gatewaysRemove},
	}}
}

func (a *app) gatewaysToken(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	req := api.GatewayTokenRequest{Name: c.String("name"), TTL: c.Duration("ttl").String(), Replace: c.Bool("replace"), Group: c.String("group")}
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

func (a *app) gatewaysSet(c *cli.Context) error {
	name, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	group := c.String("group")
	var out api.Gateway
	if err := client.Do(c.Context, "PATCH", "/api/v1/gateways/"+url.PathEscape(name), api.GatewayUpdate{Group: &group}, &out); err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	if out.Group == "" {
		fmt.Fprintf(a.stdout, "gateway %s is in no group\n", name)
	} else {
		fmt.Fprintf(a.stdout, "gateway %s is in group %s\n", name, out.Group)
	}
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
	now := time.Now()
	for _, g := range out {
		rows = append(rows, []string{g.Name, gatewayState(g, now), dash(g.Group), dash(g.Version), dash(g.RemoteAddr), ts(g.LastSeen), ts(g.CertExpiresAt), backlogText(g.Backlog)})
	}
	return printList(c, out, []string{"NAME", "STATUS", "GROUP", "VERSION", "REMOTE", "LAST SEEN", "CERT EXPIRES", "BACKLOG"}, rows)
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

// gatewayState is online, revoked, or offline with how long it has been
// away ("offline 3h12m"; plain "offline" when it never connected).
func gatewayState(g api.Gateway, now time.Time) string {
	switch {
	case !g.RevokedAt.IsZero():
		return "revoked"
	case g.Online:
		return "online"
	case g.LastSeen.IsZero():
		return "offline"
	}
	return "offline " + awayFor(now.Sub(g.LastSeen))
}

// awayFor is a duration in its two largest units: 45s, 12m, 3h12m, 2d5h.
func awayFor(d time.Duration) string {
	switch d = max(d, 0); {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

func (a *app) gatewaysRemove(c *cli.Context) error {
	name, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.RemoveGateway(c.Context, name, c.String("move-to"), c.Bool("force"))
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "gateway %s removed", out.Name)
	if out.Cut {
		fmt.Fprint(a.stdout, "; its tunnel was cut")
	}
	if len(out.Moved) > 0 {
		fmt.Fprintf(a.stdout, "; moved to %s: %s", out.MovedTo, strings.Join(out.Moved, ", "))
	}
	fmt.Fprintln(a.stdout)
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
