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
