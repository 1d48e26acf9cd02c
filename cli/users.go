package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

func (a *app) usersCommand() *cli.Command {
	return &cli.Command{Name: "users", Usage: "manage users", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "NAME", Usage: "add a user; prints a one-time password", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "role", Usage: "role to grant (repeat for more)"}, outputFlag(),
		}, Action: a.usersAdd},
		{Name: "list", Usage: "list users", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.usersList},
		a.userSwitch("disable", "disable (ends their sessions and tokens)", (*apiclient.Client).DisableUser),
		a.userSwitch("enable", "re-enable", (*apiclient.Client).EnableUser),
		a.userSwitch("reset-mfa", "remove the MFA enrollment (and end the sessions and tokens) of", (*apiclient.Client).ResetUserMFA),
		{Name: "set", ArgsUsage: "NAME", Usage: "change a user's roles: a removal ends their tokens and the live sessions it no longer grants, an addition grants from the next session", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "add-role", Usage: "role to grant (repeat for more)"},
			&cli.StringSliceFlag{Name: "remove-role", Usage: "role to take away (repeat for more)"},
			outputFlag(),
		}, Action: a.usersSet},
		{Name: "reset-password", ArgsUsage: "NAME", Usage: "give a user a new one-time password (printed once); ends their tokens and sessions",
			Flags: []cli.Flag{outputFlag()}, Action: a.usersResetPassword},
		{Name: "delete", Aliases: []string{"rm"}, ArgsUsage: "NAME", Usage: "delete a user, their tokens and live sessions (their sessions and audit events keep the name)",
			Flags: []cli.Flag{outputFlag()}, Action: a.usersDelete},
		{Name: "sync", ArgsUsage: "NAME", Usage: "re-apply the SSO group mapping to an SSO user and end their tokens and sessions (their next login asks the provider again)",
			Flags: []cli.Flag{outputFlag()}, Action: a.usersSync},
		{Name: "tokens", ArgsUsage: "NAME", Usage: "list a user's API tokens (logins), or end them all with --revoke", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "revoke", Usage: "end every token of the user and their live sessions (your own current token stays)"}, outputFlag(),
		}, Action: a.userTokens},
	}}
}

func (a *app) usersAdd(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.CreateUser(c.Context, api.CreateUserRequest{Name: n, Roles: c.StringSlice("role")})
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "user %s added (roles: %s)\none-time password: %s\nthe user sets their own with pamd passwd after logging in\n",
		out.User.Name, strings.Join(out.User.Roles, ", "), out.Password)
	return nil
}

func (a *app) usersList(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Users(c.Context)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, u := range out {
		state := "active"
		if u.Disabled {
			state = "disabled"
		}
		rows = append(rows, []string{u.Name, strings.Join(u.Roles, ","), yesNo(u.MFAEnabled), state, ts(u.CreatedAt)})
	}
	return printList(c, out, []string{"NAME", "ROLES", "MFA", "STATE", "CREATED"}, rows)
}

func (a *app) usersSet(c *cli.Context) error {
	if err := anyFlag(c, "add-role", "remove-role"); err != nil {
		return err
	}
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.UpdateUser(c.Context, n, api.UserUpdate{AddRoles: c.StringSlice("add-role"), RemoveRoles: c.StringSlice("remove-role")})
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "%s: roles %s\n", out.User.Name, strings.Join(out.User.Roles, ", "))
	if len(c.StringSlice("remove-role")) > 0 {
		fmt.Fprintf(a.stdout, "%d tokens revoked, %d live sessions ended (they log in again)\n", out.TokensRevoked, out.SessionsEnded)
	}
	return nil
}

func (a *app) usersResetPassword(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.ResetUserPassword(c.Context, n)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "%s: password reset; %d tokens revoked, %d live sessions ended\none-time password: %s\nthe user sets their own with pamd passwd after logging in\n",
		out.User.Name, out.TokensRevoked, out.SessionsEnded, out.Password)
	return nil
}

func (a *app) usersDelete(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.DeleteUser(c.Context, n)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "user %s deleted; %d tokens revoked, %d live sessions ended (their history stays)\n", out.User.Name, out.TokensRevoked, out.SessionsEnded)
	return nil
}

// anyFlag refuses a command that changes what its flags say when none of
// them is given. Actions call it first: after the flags' own checks (-o),
// which a Before would come ahead of.
func anyFlag(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.IsSet(n) {
			return nil
		}
	}
	return usageError("nothing to change: give --%s (see %s --help)", strings.Join(names, " or --"), c.Command.HelpName)
}

// userSwitch is a command that changes one thing about a user by name
// (disable, enable, reset-mfa) and says so.
func (a *app) userSwitch(name, what string, do func(*apiclient.Client, context.Context, string) error) *cli.Command {
	return &cli.Command{Name: name, ArgsUsage: "NAME", Usage: what + " a user", Action: func(c *cli.Context) error {
		n, err := oneArg(c, "NAME")
		if err != nil {
			return err
		}
		client, err := client(c)
		if err != nil {
			return err
		}
		if err := do(client, c.Context, n); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s: %s\n", n, name)
		return nil
	}}
}

func (a *app) userTokens(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	if c.Bool("revoke") {
		out, err := client.RevokeUserTokens(c.Context, n)
		if err != nil {
			return err
		}
		if jsonOutput(c) {
			return printJSON(a.stdout, out)
		}
		fmt.Fprintf(a.stdout, "%s: %d tokens revoked, %d live sessions ended\n", n, out.Revoked, out.SessionsEnded)
		return nil
	}
	out, err := client.UserTokens(c.Context, n)
	if err != nil {
		return err
	}
	rows := [][]string{}
	for _, t := range out {
		id := t.ID
		if t.Current {
			id += " (this one)"
		}
		rows = append(rows, []string{id, dash(t.Source), ts(t.CreatedAt), ts(t.ExpiresAt)})
	}
	return printList(c, out, []string{"TOKEN", "FROM", "CREATED", "EXPIRES"}, rows)
}
