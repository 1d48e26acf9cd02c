package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) rolesCommand() *cli.Command {
	return &cli.Command{Name: "roles", Usage: "manage roles", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "NAME", Usage: "add a role granting access", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "allow", Usage: "RESOURCE_GLOB/ACCOUNT_GLOB (repeat for more)"},
			&cli.StringFlag{Name: "max-duration", Usage: "longest session, for example 4h (default 8h)"},
			&cli.BoolFlag{Name: "require-reason", Usage: "sessions need --reason"},
			&cli.StringFlag{Name: "description"},
			&cli.StringSliceFlag{Name: "request", Usage: "RESOURCE_GLOB/ACCOUNT_GLOB granted only through an approved access request (repeat for more)"},
			&cli.StringSliceFlag{Name: "approvers", Usage: "roles whose holders approve its requests (default admin; repeat for more)"},
			&cli.IntFlag{Name: "approvals", Value: 1, Usage: "distinct approvals a request needs"},
			&cli.StringFlag{Name: "request-ttl", Value: "24h", Usage: "how long a request waits for approvals"},
			outputFlag(),
		}, Action: a.rolesAdd},
		{Name: "list", Usage: "list roles", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.rolesList},
		{Name: "set", ArgsUsage: "NAME", Usage: "edit a role; it grants from the next session, and its holders' live sessions it no longer grants end", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "allow", Usage: "RESOURCE_GLOB/ACCOUNT_GLOB, replacing the role's patterns (repeat for more)"},
			&cli.StringSliceFlag{Name: "add-allow", Usage: "a pattern to add (repeat for more)"},
			&cli.StringSliceFlag{Name: "remove-allow", Usage: "a pattern to remove (repeat for more)"},
			&cli.StringFlag{Name: "max-duration", Usage: "longest session, for example 4h"},
			&cli.BoolFlag{Name: "require-reason", Usage: "sessions need --reason (--require-reason=false: they do not)"},
			&cli.StringFlag{Name: "description"},
			&cli.StringSliceFlag{Name: "request", Usage: "RESOURCE_GLOB/ACCOUNT_GLOB granted on request, replacing the role's request patterns (repeat for more)"},
			&cli.StringSliceFlag{Name: "add-request", Usage: "a request pattern to add (repeat for more)"},
			&cli.StringSliceFlag{Name: "remove-request", Usage: "a request pattern to remove (repeat for more)"},
			&cli.StringSliceFlag{Name: "approvers", Usage: "roles whose holders approve, replacing the role's (repeat for more)"},
			&cli.IntFlag{Name: "approvals", DefaultText: "unchanged", Usage: "distinct approvals a request needs"},
			&cli.StringFlag{Name: "request-ttl", Usage: "how long a request waits for approvals"},
			outputFlag(),
		}, Action: a.rolesSet},
		{Name: "rm", ArgsUsage: "NAME", Usage: "remove a role", Action: a.rolesRemove},
	}}
}

func (a *app) rolesAdd(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	req := api.Role{Name: n, Allow: c.StringSlice("allow"), MaxDuration: c.String("max-duration"), RequireReason: c.Bool("require-reason"), Description: c.String("description"),
		Request: c.StringSlice("request"), Approvers: c.StringSlice("approvers")}
	if c.IsSet("approvals") { // else the server's default: the same
		req.Approvals = c.Int("approvals")
	}
	if c.IsSet("request-ttl") {
		req.RequestTTL = c.String("request-ttl")
	}
	out, err := client.CreateRole(c.Context, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "role %s added: allow %s, max %s\n", out.Name, strings.Join(out.Allow, " "), out.MaxDuration)
	if len(out.Request) > 0 {
		fmt.Fprintf(a.stdout, "on request: %s, approved by %s\n", strings.Join(out.Request, " "), approversText(out))
	}
	return nil
}

func (a *app) rolesSet(c *cli.Context) error {
	if err := anyFlag(c, "allow", "add-allow", "remove-allow", "max-duration", "require-reason", "description",
		"request", "add-request", "remove-request", "approvers", "approvals", "request-ttl"); err != nil {
		return err
	}
	if c.IsSet("allow") && (c.IsSet("add-allow") || c.IsSet("remove-allow")) {
		return usageError("--allow replaces the role's patterns: give it alone, or --add-allow and --remove-allow instead")
	}
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.UpdateRole(c.Context, n, roleUpdate(c))
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	r := out.Role
	fmt.Fprintf(a.stdout, "role %s changed: allow %s, max %s, reason required: %s; %d live sessions it no longer grants ended\n",
		r.Name, dash(strings.Join(r.Allow, " ")), dash(r.MaxDuration), yesNo(r.RequireReason), out.SessionsEnded)
	return nil
}

// roleUpdate is the change the flags given ask for.
func roleUpdate(c *cli.Context) api.RoleUpdate {
	req := api.RoleUpdate{AddAllow: c.StringSlice("add-allow"), RemoveAllow: c.StringSlice("remove-allow")}
	if c.IsSet("allow") {
		allow := c.StringSlice("allow")
		req.Allow = &allow
	}
	if c.IsSet("max-duration") {
		v := c.String("max-duration")
		req.MaxDuration = &v
	}
	if c.IsSet("require-reason") {
		v := c.Bool("require-reason")
		req.RequireReason = &v
	}
	if c.IsSet("description") {
		v := c.String("description")
		req.Description = &v
	}
	req.AddRequest, req.RemoveRequest = c.StringSlice("add-request"), c.StringSlice("remove-request")
	if c.IsSet("request") {
		v := c.StringSlice("request")
		req.Request = &v
	}
	if c.IsSet("approvers") {
		v := c.StringSlice("approvers")
		req.Approvers = &v
	}
	if c.IsSet("approvals") {
		v := c.Int("approvals")
		req.Approvals = &v
	}
	if c.IsSet("request-ttl") {
		v := c.String("request-ttl")
		req.RequestTTL = &v
	}
	return req
}

// approversText is who approves a role's requests: N of the holders of
// its approver roles.
func approversText(r api.Role) string {
	roles := r.Approvers
	if len(roles) == 0 {
		roles = []string{"admin"}
	}
	return fmt.Sprintf("%d of %s", max(r.Approvals, 1), strings.Join(roles, " or "))
}

func (a *app) rolesList(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Roles(c.Context)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, r := range out {
		request := "-"
		if len(r.Request) > 0 {
			request = strings.Join(r.Request, " ") + " (" + approversText(r) + ")"
		}
		rows = append(rows, []string{r.Name, dash(strings.Join(r.Allow, " ")), dash(r.MaxDuration), yesNo(r.RequireReason), yesNo(r.Builtin), request})
	}
	return printList(c, out, []string{"NAME", "ALLOW", "MAX", "REASON", "BUILT-IN", "ON REQUEST"}, rows)
}

func (a *app) rolesRemove(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	if err := client.DeleteRole(c.Context, n); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "role %s removed\n", n)
	return nil
}
