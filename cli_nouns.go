package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func usersCommand() *cli.Command {
	setFlag := func(name, path, done string) *cli.Command {
		return &cli.Command{Name: name, ArgsUsage: "NAME", Usage: done + " a user", Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			if err := call(c, "POST", "/api/v1/users/"+url.PathEscape(n)+"/"+path, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: %s\n", n, path)
			return nil
		}}
	}
	return &cli.Command{Name: "users", Usage: "manage users", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "NAME", Usage: "add a user; prints a one-time password", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "role", Usage: "role to grant (repeat for more)"}, outputFlag,
		}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var out api.CreateUserResponse
			if err := call(c, "POST", "/api/v1/users", api.CreateUserRequest{Name: n, Roles: c.StringSlice("role")}, &out); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c.App.Writer, out)
			}
			fmt.Fprintf(c.App.Writer, "user %s added (roles: %s)\none-time password: %s\nthe user sets their own with pamd passwd after logging in\n",
				out.User.Name, strings.Join(out.User.Roles, ", "), out.Password)
			return nil
		}},
		{Name: "list", Usage: "list users", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var out []api.User
			if err := call(c, "GET", "/api/v1/users", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, u := range out {
				state := "active"
				switch {
				case u.Disabled:
					state = "disabled"
				}
				rows = append(rows, []string{u.Name, strings.Join(u.Roles, ","), yesNo(u.MFAEnabled), state, ts(u.CreatedAt)})
			}
			return printList(c, out, []string{"NAME", "ROLES", "MFA", "STATE", "CREATED"}, rows)
		}},
		setFlag("disable", "disable", "disable (ends their sessions and tokens)"),
		setFlag("enable", "enable", "re-enable"),
		setFlag("reset-mfa", "reset-mfa", "remove the MFA enrollment (and end the sessions and tokens) of"),
		{Name: "tokens", ArgsUsage: "NAME", Usage: "list a user's API tokens (logins), or end them all with --revoke", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "revoke", Usage: "end every token of the user and their live sessions (your own current token stays)"}, outputFlag,
		}, Action: userTokens},
	}}
}

func userTokens(c *cli.Context) error {
	n, err := oneArg(c, "NAME")
	if err != nil {
		return err
	}
	path := "/api/v1/users/" + url.PathEscape(n) + "/tokens"
	if c.Bool("revoke") {
		var out api.RevokeTokensResponse
		if err := call(c, "DELETE", path, nil, &out); err != nil {
			return err
		}
		if jsonOutput(c) {
			return printJSON(c.App.Writer, out)
		}
		fmt.Fprintf(c.App.Writer, "%s: %d tokens revoked, %d live sessions ended\n", n, out.Revoked, out.SessionsEnded)
		return nil
	}
	var out []api.TokenInfo
	if err := call(c, "GET", path, nil, &out); err != nil {
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

func rolesCommand() *cli.Command {
	return &cli.Command{Name: "roles", Usage: "manage roles", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "NAME", Usage: "add a role granting access", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "allow", Usage: "RESOURCE_GLOB/ACCOUNT_GLOB (repeat for more)"},
			&cli.StringFlag{Name: "max-duration", Usage: "longest session, for example 4h (default 8h)"},
			&cli.BoolFlag{Name: "require-reason", Usage: "sessions need --reason"},
			&cli.StringFlag{Name: "description"},
		}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			req := api.Role{Name: n, Allow: c.StringSlice("allow"), MaxDuration: c.String("max-duration"), RequireReason: c.Bool("require-reason"), Description: c.String("description")}
			var out api.Role
			if err := call(c, "POST", "/api/v1/roles", req, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "role %s added: allow %s, max %s\n", out.Name, strings.Join(out.Allow, " "), out.MaxDuration)
			return nil
		}},
		{Name: "list", Usage: "list roles", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var out []api.Role
			if err := call(c, "GET", "/api/v1/roles", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, r := range out {
				rows = append(rows, []string{r.Name, dash(strings.Join(r.Allow, " ")), dash(r.MaxDuration), yesNo(r.RequireReason), yesNo(r.Builtin)})
			}
			return printList(c, out, []string{"NAME", "ALLOW", "MAX", "REASON", "BUILT-IN"}, rows)
		}},
		{Name: "rm", ArgsUsage: "NAME", Usage: "remove a role", Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			if err := call(c, "DELETE", "/api/v1/roles/"+url.PathEscape(n), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "role %s removed\n", n)
			return nil
		}},
	}}
}

func gatewaysCommand() *cli.Command {
	return &cli.Command{Name: "gateways", Usage: "enroll, list and revoke gateways", Subcommands: []*cli.Command{
		{Name: "token", Usage: "create a one-time enrollment token", Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Required: true},
			&cli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "how long the token stays valid (at most 24h)"},
			&cli.BoolFlag{Name: "replace", Usage: "enroll a new gateway in place of an enrolled one of that name; its certificate stops working when the new one enrolls"},
			outputFlag,
		}, Action: func(c *cli.Context) error {
			var out api.GatewayTokenResponse
			req := api.GatewayTokenRequest{Name: c.String("name"), TTL: c.Duration("ttl").String(), Replace: c.Bool("replace")}
			if err := call(c, "POST", "/api/v1/gateways/tokens", req, &out); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c.App.Writer, out)
			}
			fmt.Fprintf(c.App.Writer, "%s\n\nvalid until %s, once. On the gateway host run:\n  %s\n", out.Token, ts(out.ExpiresAt), out.Command)
			return nil
		}},
		{Name: "list", Usage: "list gateways", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var out []api.Gateway
			if err := call(c, "GET", "/api/v1/gateways", nil, &out); err != nil {
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
		}},
		{Name: "revoke", Usage: "revoke a gateway's certificate: it is disconnected at once and cannot reconnect", ArgsUsage: "NAME", Action: func(c *cli.Context) error {
			name, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			if err := call(c, "POST", "/api/v1/gateways/"+url.PathEscape(name)+"/revoke", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "gateway %s revoked; to enroll it again: pamd gateways token --name %s --replace\n", name, name)
			return nil
		}},
	}}
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

func resourcesCommand() *cli.Command {
	return &cli.Command{Name: "resources", Usage: "manage resources", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add a resource", Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Required: true, Usage: "tcp, ssh, mongodb or mssql"},
			&cli.StringFlag{Name: "name", Required: true},
			&cli.StringFlag{Name: "gateway", Required: true, Usage: "the gateway that reaches it"},
			&cli.StringFlag{Name: "host", Usage: "host name or address as the gateway sees it (tcp, ssh, mssql)"},
			&cli.IntFlag{Name: "port", Usage: "default 22 for ssh, 1433 for mssql"},
			&cli.StringFlag{Name: "database", Usage: "mssql: the database clients land in unless they name one"},
			&cli.StringFlag{Name: "connection-string", Usage: "mongodb: mongodb:// or mongodb+srv:// URI without credentials or database"},
			&cli.StringFlag{Name: "auth-database", Value: "admin", Usage: "mongodb: where the accounts authenticate"},
			&cli.BoolFlag{Name: "tls", Value: true, Usage: "mongodb, mssql: TLS to the server (--tls=false to turn off)"},
			&cli.BoolFlag{Name: "tls-reject-unauthorized", Value: true, Usage: "mongodb, mssql: verify the server's certificate"},
			&cli.StringFlag{Name: "tls-ca-file", Usage: "mongodb, mssql: CA certificate (PEM) to verify the server with"},
			passwordLengthFlag, passwordClassesFlag,
		}, Action: func(c *cli.Context) error {
			req := api.Resource{Name: c.String("name"), Type: c.String("type"), Gateway: c.String("gateway"), Host: c.String("host"), Port: c.Int("port")}
			req.Options = policyOptions(c, req.Options)
			if req.Type == "mongodb" || req.Type == "mssql" {
				req.Options["tls"], req.Options["tls_reject_unauthorized"] = fmt.Sprint(c.Bool("tls")), fmt.Sprint(c.Bool("tls-reject-unauthorized"))
				if req.Type == "mongodb" {
					req.Options["uri"], req.Options["auth_database"] = c.String("connection-string"), c.String("auth-database")
				} else {
					req.Options["database"] = c.String("database")
				}
				if f := c.String("tls-ca-file"); f != "" {
					b, err := os.ReadFile(f)
					if err != nil {
						return err
					}
					req.Options["tls_ca"] = string(b)
				}
			}
			var out api.Resource
			if err := call(c, "POST", "/api/v1/resources", req, &out); err != nil {
				return err
			}
			if out.Type == "mongodb" {
				fmt.Fprintf(c.App.Writer, "resource %s added: mongodb %s via gateway %s (server version %s)\n", out.Name, out.Options["uri"], out.Gateway, out.Options["server_version"])
			} else {
				fmt.Fprintf(c.App.Writer, "resource %s added: %s %s:%d via gateway %s\n", out.Name, out.Type, out.Host, out.Port, out.Gateway)
			}
			if out.HostKeyFingerprint != "" {
				fmt.Fprintf(c.App.Writer, "pinned the target's SSH host key %s\n", out.HostKeyFingerprint)
			}
			for _, w := range out.Warnings {
				printEscaped(c.App.ErrWriter, "warning: %s\n", w)
			}
			return nil
		}},
		{Name: "test", ArgsUsage: "NAME", Usage: "check through the gateway that a resource is reachable and its accounts log in", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var out []struct {
				Check  string `json:"check"`
				OK     bool   `json:"ok"`
				Detail string `json:"detail"`
			}
			if err := call(c, "POST", "/api/v1/resources/"+url.PathEscape(n)+"/test", nil, &out); err != nil {
				return err
			}
			failed := 0
			var rows [][]string
			for _, ck := range out {
				res := "ok"
				if !ck.OK {
					res, failed = "FAILED", failed+1
				}
				rows = append(rows, []string{ck.Check, res, ck.Detail})
			}
			if err := printList(c, out, []string{"CHECK", "RESULT", "DETAIL"}, rows); err != nil {
				return err
			}
			if failed > 0 {
				return cli.Exit(fmt.Sprintf("%d of %d checks failed", failed, len(out)), 1)
			}
			return nil
		}},
		{Name: "set", ArgsUsage: "NAME", Usage: "change a resource (an ssh resource's new address re-pins its host key)", Flags: []cli.Flag{
			&cli.StringFlag{Name: "gateway"}, &cli.StringFlag{Name: "host"}, &cli.IntFlag{Name: "port"},
			&cli.StringFlag{Name: "connection-string"}, &cli.StringFlag{Name: "auth-database"}, &cli.StringFlag{Name: "database"},
			&cli.BoolFlag{Name: "tls"}, &cli.BoolFlag{Name: "tls-reject-unauthorized"}, &cli.StringFlag{Name: "tls-ca-file"},
			passwordLengthFlag, passwordClassesFlag,
		}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var req api.ResourceUpdate
			str := func(name string) *string {
				if !c.IsSet(name) {
					return nil
				}
				v := c.String(name)
				return &v
			}
			req.Gateway, req.Host = str("gateway"), str("host")
			if c.IsSet("port") {
				p := c.Int("port")
				req.Port = &p
			}
			opts := policyOptions(c, map[string]string{})
			for flag, key := range map[string]string{"connection-string": "uri", "auth-database": "auth_database", "database": "database"} {
				if v := str(flag); v != nil {
					opts[key] = *v
				}
			}
			for flag, key := range map[string]string{"tls": "tls", "tls-reject-unauthorized": "tls_reject_unauthorized"} {
				if c.IsSet(flag) {
					opts[key] = fmt.Sprint(c.Bool(flag))
				}
			}
			if f := c.String("tls-ca-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				opts["tls_ca"] = string(b)
			}
			if len(opts) > 0 {
				req.Options = opts
			}
			var out api.Resource
			if err := call(c, "PATCH", "/api/v1/resources/"+url.PathEscape(n), req, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "resource %s updated\n", out.Name)
			for _, w := range out.Warnings {
				printEscaped(c.App.ErrWriter, "warning: %s\n", w)
			}
			return nil
		}},
		{Name: "trust-host-key", ArgsUsage: "NAME", Usage: "re-pin an ssh resource's host key after a legitimate change", Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var out api.Resource
			if err := call(c, "POST", "/api/v1/resources/"+url.PathEscape(n)+"/trust-host-key", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "resource %s: pinned host key %s\n", out.Name, out.HostKeyFingerprint)
			return nil
		}},
		{Name: "ssh-ca", ArgsUsage: "NAME", Usage: "print an ssh resource's user CA public key, or the script that makes sshd trust it", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "setup-script", Usage: "print the bash setup script instead of the key"},
		}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var r api.Resource
			if err := call(c, "GET", "/api/v1/resources/"+url.PathEscape(n), nil, &r); err != nil {
				return err
			}
			path := "/api/v1/resources/ssh/" + url.PathEscape(r.ID) + "/ssh-ca-public-key"
			if c.Bool("setup-script") {
				path = "/api/v1/resources/ssh/" + url.PathEscape(r.ID) + "/ssh-ca-setup"
			}
			var body []byte
			if err := call(c, "GET", path, nil, &body); err != nil {
				return err
			}
			_, err = c.App.Writer.Write(body)
			return err
		}},
		{Name: "list", Usage: "list resources", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var out []api.Resource
			if err := call(c, "GET", "/api/v1/resources", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, r := range out {
				rows = append(rows, []string{r.Name, r.Type, r.Host + ":" + strconv.Itoa(r.Port), r.Gateway, ts(r.CreatedAt)})
			}
			return printList(c, out, []string{"NAME", "TYPE", "ADDRESS", "GATEWAY", "CREATED"}, rows)
		}},
		{Name: "show", ArgsUsage: "NAME", Usage: "show a resource and its accounts", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			var r api.Resource
			if err := call(c, "GET", "/api/v1/resources/"+url.PathEscape(n), nil, &r); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c.App.Writer, r)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "name:     %s\ntype:     %s\naddress:  %s:%d\ngateway:  %s\ncreated:  %s\n", r.Name, r.Type, r.Host, r.Port, r.Gateway, ts(r.CreatedAt))
			if r.HostKeyFingerprint != "" {
				fmt.Fprintf(w, "host key: %s (pinned)\n", r.HostKeyFingerprint)
			}
			fmt.Fprintln(w, "accounts:")
			for _, a := range r.Accounts {
				auth := ""
				if a.Auth != "" {
					auth = ", " + a.Auth + " auth"
				}
				printEscaped(w, "  %s (username %s%s, MFA %s)\n", a.Name, dash(a.Username), auth, yesNo(a.RequireMFA))
			}
			return nil
		}},
		{Name: "rm", ArgsUsage: "NAME", Usage: "remove a resource and its accounts", Action: func(c *cli.Context) error {
			n, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			if err := call(c, "DELETE", "/api/v1/resources/"+url.PathEscape(n), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "resource %s removed\n", n)
			return nil
		}},
	}}
}

func accountsCommand() *cli.Command {
	return &cli.Command{Name: "accounts", Usage: "manage the accounts (credentials) of resources", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "RESOURCE/NAME", Usage: "add an account", Flags: []cli.Flag{
			&cli.StringFlag{Name: "username"},
			&cli.StringFlag{Name: "auth", Usage: "ssh: password, key or certificate; mssql: sql, ntlm or kerberos"},
			&cli.StringFlag{Name: "domain", Usage: "mssql ntlm: the account's Windows domain"},
			&cli.StringFlag{Name: "realm", Usage: "mssql kerberos: the Kerberos realm (EXAMPLE.COM)"},
			&cli.StringFlag{Name: "spn", Usage: "mssql kerberos: the server's SPN (MSSQLSvc/HOST:PORT)"},
			&cli.StringFlag{Name: "kdc", Usage: "mssql kerberos: KDC HOST[:PORT] (default: DNS SRV records of the realm)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input"},
			&cli.StringFlag{Name: "private-key-file", Usage: "ssh key auth: the private key (OpenSSH or PEM)"},
			&cli.BoolFlag{Name: "passphrase-stdin", Usage: "read the private key's passphrase from standard input"},
			&cli.BoolFlag{Name: "require-mfa", Usage: "sessions need a fresh MFA code"},
			&cli.StringFlag{Name: "description"},
		}, Action: func(c *cli.Context) error {
			res, name, err := splitTarget(c)
			if err != nil {
				return err
			}
			req := api.CreateAccountRequest{Name: name, Username: c.String("username"), Auth: c.String("auth"), RequireMFA: c.Bool("require-mfa"), Description: c.String("description"),
				Domain: c.String("domain"), Realm: c.String("realm"), SPN: c.String("spn"), KDC: c.String("kdc")}
			if c.Bool("password-stdin") {
				if req.Password, err = readLine(); err != nil {
					return err
				}
			}
			if f := c.String("private-key-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				req.PrivateKey = string(b)
			}
			if c.Bool("passphrase-stdin") {
				if req.Passphrase, err = readLine(); err != nil {
					return err
				}
			}
			var out api.Account
			if err := call(c, "POST", "/api/v1/resources/"+url.PathEscape(res)+"/accounts", req, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "account %s/%s added\n", out.Resource, out.Name)
			return nil
		}},
		{Name: "set", ArgsUsage: "RESOURCE/NAME", Usage: "change an account; new secrets replace the stored ones", Flags: []cli.Flag{
			&cli.StringFlag{Name: "username"}, &cli.StringFlag{Name: "auth", Usage: "ssh: password, key or certificate"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read a new password from standard input"},
			&cli.StringFlag{Name: "private-key-file"}, &cli.BoolFlag{Name: "passphrase-stdin"},
			&cli.BoolFlag{Name: "require-mfa"}, &cli.StringFlag{Name: "description"},
			&cli.StringFlag{Name: "rotation-interval", Usage: "rotate the credential on this schedule (30d, 12h; 0 turns it off)"},
			&cli.StringFlag{Name: "rotate-with", Usage: "RESOURCE/ACCOUNT that changes this account's credential (empty: the account itself)"},
		}, Action: func(c *cli.Context) error {
			res, name, err := splitTarget(c)
			if err != nil {
				return err
			}
			var req api.AccountUpdate
			str := func(flag string) *string {
				if !c.IsSet(flag) {
					return nil
				}
				v := c.String(flag)
				return &v
			}
			req.Username, req.Auth, req.Description = str("username"), str("auth"), str("description")
			req.RotationInterval, req.RotateWith = str("rotation-interval"), str("rotate-with")
			if c.IsSet("require-mfa") {
				v := c.Bool("require-mfa")
				req.RequireMFA = &v
			}
			if c.Bool("password-stdin") {
				pw, err := readLine()
				if err != nil {
					return err
				}
				req.Password = &pw
			}
			if f := c.String("private-key-file"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				k := string(b)
				req.PrivateKey = &k
			}
			if c.Bool("passphrase-stdin") {
				pp, err := readLine()
				if err != nil {
					return err
				}
				req.Passphrase = &pp
			}
			if err := call(c, "PATCH", "/api/v1/resources/"+url.PathEscape(res)+"/accounts/"+url.PathEscape(name), req, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "account %s/%s updated\n", res, name)
			return nil
		}},
		{Name: "list", ArgsUsage: "RESOURCE", Usage: "list a resource's accounts", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			n, err := oneArg(c, "RESOURCE")
			if err != nil {
				return err
			}
			var out []api.Account
			if err := call(c, "GET", "/api/v1/resources/"+url.PathEscape(n)+"/accounts", nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, a := range out {
				rows = append(rows, []string{a.Resource + "/" + a.Name, dash(a.Username), yesNo(a.HasPassword || a.HasKey), yesNo(a.RequireMFA), rotationSummary(a.Rotation), dash(a.Description)})
			}
			return printList(c, out, []string{"ACCOUNT", "USERNAME", "SECRET", "MFA", "ROTATION", "DESCRIPTION"}, rows)
		}},
		{Name: "show", ArgsUsage: "RESOURCE/NAME", Usage: "show an account and its rotation status", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			res, name, err := splitTarget(c)
			if err != nil {
				return err
			}
			var all []api.Account
			if err := call(c, "GET", "/api/v1/resources/"+url.PathEscape(res)+"/accounts", nil, &all); err != nil {
				return err
			}
			for _, a := range all {
				if a.Name == name {
					if jsonOutput(c) {
						return printJSON(c.App.Writer, a)
					}
					printAccount(c.App.Writer, a)
					return nil
				}
			}
			return fmt.Errorf("resource %s has no account %q", res, name)
		}},
		{Name: "rotate", ArgsUsage: "RESOURCE/NAME", Usage: "change the account's credential on the target now (through its gateway)", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			res, name, err := splitTarget(c)
			if err != nil {
				return err
			}
			var out api.RotateResult
			if err := call(c, "POST", "/api/v1/resources/"+url.PathEscape(res)+"/accounts/"+url.PathEscape(name)+"/rotate", nil, &out); err != nil {
				return err
			}
			if jsonOutput(c) {
				if err := printJSON(c.App.Writer, out); err != nil {
					return err
				}
			}
			return reportRotation(c, out)
		}},
		{Name: "rm", ArgsUsage: "RESOURCE/NAME", Usage: "remove an account", Action: func(c *cli.Context) error {
			res, name, err := splitTarget(c)
			if err != nil {
				return err
			}
			if err := call(c, "DELETE", "/api/v1/resources/"+url.PathEscape(res)+"/accounts/"+url.PathEscape(name), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "account %s/%s removed\n", res, name)
			return nil
		}},
	}}
}

func sessionsCommand() *cli.Command {
	return &cli.Command{Name: "sessions", Usage: "list, inspect, terminate and replay access sessions", Subcommands: append([]*cli.Command{
		{Name: "list", Usage: "list sessions (yours, or all for admins and auditors)", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "active"}, outputFlag,
		}, Action: func(c *cli.Context) error {
			path := "/api/v1/sessions"
			if c.Bool("active") {
				path += "?active=true"
			}
			var out []api.Session
			if err := call(c, "GET", path, nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, s := range out {
				state := "active"
				if !s.Active {
					state = dash(s.EndReason)
					if s.EndedAt.IsZero() {
						state = "expired"
					}
				}
				rows = append(rows, []string{s.ID, s.User, s.Resource + "/" + s.Account, ts(s.CreatedAt), ts(s.ExpiresAt), state})
			}
			return printList(c, out, []string{"ID", "USER", "TARGET", "CREATED", "EXPIRES", "STATE"}, rows)
		}},
		{Name: "show", ArgsUsage: "ID", Usage: "show a session and its connections", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			id, err := oneArg(c, "ID")
			if err != nil {
				return err
			}
			var s api.Session
			if err := call(c, "GET", "/api/v1/sessions/"+url.PathEscape(id), nil, &s); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c.App.Writer, s)
			}
			w := c.App.Writer
			printEscaped(w, "id:        %s\nuser:      %s\ntarget:    %s/%s\nreason:    %s\ncreated:   %s\nexpires:   %s\nended:     %s %s\nactive:    %s\nconnections:\n",
				s.ID, s.User, s.Resource, s.Account, dash(s.Reason), ts(s.CreatedAt), ts(s.ExpiresAt), ts(s.EndedAt), s.EndReason, yesNo(s.Active))
			for _, cn := range s.Connections {
				printEscaped(w, "  %s  from %s  %s → %s  up %d B  down %d B  %s\n", cn.ID, dash(cn.ClientAddr), ts(cn.StartedAt), ts(cn.EndedAt), cn.BytesUp, cn.BytesDown, cn.Error)
			}
			return nil
		}},
		{Name: "terminate", ArgsUsage: "ID", Usage: "end an active session now, cutting its connections", Action: func(c *cli.Context) error {
			id, err := oneArg(c, "ID")
			if err != nil {
				return err
			}
			if err := call(c, "POST", "/api/v1/sessions/"+url.PathEscape(id)+"/terminate", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "session %s terminated\n", id)
			return nil
		}},
	}, sessionRecordingCommands()...)}
}

func auditCommand() *cli.Command {
	return &cli.Command{Name: "audit", Usage: "read and verify the audit log", Subcommands: []*cli.Command{
		{Name: "list", Usage: "list audit events, oldest first", Flags: []cli.Flag{
			&cli.DurationFlag{Name: "since", Usage: "only events newer than this, for example 24h"},
			&cli.StringFlag{Name: "user", Usage: "only events by this actor"},
			&cli.StringFlag{Name: "action", Usage: "only this action, or a family such as session"},
			&cli.IntFlag{Name: "limit", Value: 1000, Usage: "at most this many (the newest)"},
			outputFlag,
		}, Action: func(c *cli.Context) error {
			q := url.Values{}
			if d := c.Duration("since"); d > 0 {
				q.Set("since", d.String())
			}
			if u := c.String("user"); u != "" {
				q.Set("user", u)
			}
			if a := c.String("action"); a != "" {
				q.Set("action", a)
			}
			q.Set("limit", strconv.Itoa(c.Int("limit")))
			var out []api.AuditEvent
			if err := call(c, "GET", "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			var rows [][]string
			for _, e := range out {
				rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), ts(e.Time), e.Actor, e.Action, dash(e.Target), e.Outcome, dash(e.Source), e.Detail})
			}
			return printList(c, out, []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE", "DETAIL"}, rows)
		}},
		{Name: "verify", Usage: "check the hash chain; exits 1 at the first broken link", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var v api.AuditVerify
			if err := call(c, "GET", "/api/v1/audit/verify", nil, &v); err != nil {
				return err
			}
			if jsonOutput(c) {
				printJSON(c.App.Writer, v)
			} else if v.OK {
				fmt.Fprintf(c.App.Writer, "audit chain intact: %d events verified\n", v.Events)
			}
			if !v.OK {
				return cli.Exit(fmt.Sprintf("audit chain broken at event %d: %s (%d events before it verified)", v.Seq, v.Reason, v.Events), 1)
			}
			return nil
		}},
	}}
}
