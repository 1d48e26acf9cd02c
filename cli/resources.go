package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) resourcesCommand() *cli.Command {
	return &cli.Command{Name: "resources", Usage: "manage resources", Subcommands: []*cli.Command{
		{Name: "add", Usage: "add a resource", Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Usage: "tcp, ssh, mongodb or mssql (required)"},
			&cli.StringFlag{Name: "name", Usage: "(required)"},
			&cli.StringFlag{Name: "gateway", Usage: "the gateway that reaches it (this or --gateway-group is required)"},
			&cli.StringFlag{Name: "gateway-group", Usage: "the gateway group whose gateways reach it (pamd gateway --gateway-group): each connection goes to one of them that is connected"},
			&cli.StringFlag{Name: "host", Usage: "host name or address as the gateway sees it (tcp, ssh, mssql)"},
			&cli.IntFlag{Name: "port", Usage: "the target's port (tcp, ssh, mssql)", DefaultText: "22 for ssh, 1433 for mssql"},
			&cli.StringFlag{Name: "database", Usage: "mssql: the database clients land in unless they name one; postgres: the database the gateway logs in to"},
			&cli.StringFlag{Name: "connection-string", Usage: "mongodb: mongodb:// or mongodb+srv:// URI without credentials or database"},
			&cli.StringFlag{Name: "auth-database", Value: "admin", Usage: "mongodb: where the accounts authenticate"},
			&cli.BoolFlag{Name: "tls", Value: true, Usage: "mongodb, mssql, postgres: TLS to the server (--tls=false to turn off)"},
			&cli.BoolFlag{Name: "tls-reject-unauthorized", Value: true, Usage: "mongodb, mssql, postgres: verify the server's certificate"},
			&cli.StringFlag{Name: "tls-ca-file", Usage: "mongodb, mssql, postgres: CA certificate (PEM) to verify the server with"},
			passwordLengthFlag(), passwordClassesFlag(), optionFlagSlice(), outputFlag(),
		}, Before: before(noArgs, requireFlags("type", "name"), requireOneOf("gateway", "gateway-group")), Action: a.resourcesAdd},
		{Name: "test", ArgsUsage: "NAME", Usage: "check through the gateway that a resource is reachable and its accounts log in", Flags: []cli.Flag{outputFlag()}, Action: a.resourcesTest},
		{Name: "set", ArgsUsage: "NAME", Usage: "change a resource (an ssh resource's new address re-pins its host key)", Flags: append(unchangedByDefault(
			&cli.StringFlag{Name: "gateway", Usage: "move it to this gateway (out of its gateway group, if any)"},
			&cli.StringFlag{Name: "gateway-group", Usage: "move it to this gateway group (off its gateway)"},
			&cli.StringFlag{Name: "host"}, &cli.IntFlag{Name: "port"},
			&cli.StringFlag{Name: "connection-string"}, &cli.StringFlag{Name: "auth-database"}, &cli.StringFlag{Name: "database"},
			&cli.BoolFlag{Name: "tls"}, &cli.BoolFlag{Name: "tls-reject-unauthorized"}, &cli.StringFlag{Name: "tls-ca-file"},
			passwordLengthFlag(), passwordClassesFlag(),
		), optionFlagSlice(), outputFlag()), Action: a.resourcesSet},
		{Name: "trust-host-key", ArgsUsage: "NAME", Usage: "re-pin an ssh resource's host key after a legitimate change", Flags: []cli.Flag{outputFlag()}, Action: a.resourcesTrustHostKey},
		{Name: "ssh-ca", ArgsUsage: "NAME", Usage: "print an ssh resource's user CA public key, or the script that makes sshd trust it", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "setup-script", Usage: "print the bash setup script instead of the key"},
		}, Action: a.resourcesSSHCA},
		{Name: "ad-setup", ArgsUsage: "NAME", Usage: "print the PowerShell script that makes Active Directory accept an mssql resource's PKINIT certificates (db-client CA in NTAuth and the trusted roots, its CRL, the GPO)",
			Action: a.resourcesADSetup},
		{Name: "list", Usage: "list resources", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.resourcesList},
		{Name: "show", ArgsUsage: "NAME", Usage: "show a resource and its accounts", Flags: []cli.Flag{outputFlag()}, Action: a.resourcesShow},
		{Name: "rm", ArgsUsage: "NAME", Usage: "remove a resource and its accounts", Action: a.resourcesRemove},
	}}
}

// unchangedByDefault marks the flags of a set command: one not given leaves
// its setting as it is, which help says rather than a zero value.
func unchangedByDefault(flags ...cli.Flag) []cli.Flag {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.BoolFlag:
			f.DefaultText = "unchanged"
		case *cli.IntFlag:
			f.DefaultText = "unchanged"
		case *cli.StringFlag:
			f.DefaultText = "unchanged"
		}
	}
	return flags
}

func (a *app) resourcesAdd(c *cli.Context) error {
	req := api.Resource{Name: c.String("name"), Type: c.String("type"), Gateway: c.String("gateway"), GatewayGroup: c.String("gateway-group"),
		Host: c.String("host"), Port: c.Int("port")}
	req.Options = policyOptions(c, req.Options)
	client, err := client(c)
	if err != nil {
		return err
	}
	kinds, err := client.Kinds(c.Context)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		if k.Name != req.Type {
			continue
		}
		// The type's options, each from its flag (its default if not given).
		if err := optionsFromFlags(c, k.ResourceFields, req.Options, false); err != nil {
			return err
		}
	}
	out, err := client.CreateResource(c.Context, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	version := ""
	if out.Version != "" {
		version = " (server version " + out.Version + ")"
	}
	printEscaped(a.stdout, "resource %s added: %s %s via %s%s\n", out.Name, out.Type, out.Address, via(out), version)
	if out.HostKeyFingerprint != "" {
		fmt.Fprintf(a.stdout, "pinned the target's SSH host key %s\n", out.HostKeyFingerprint)
	}
	a.printWarnings(out.Warnings)
	return nil
}

// printWarnings writes what the server warned about to standard error.
func (a *app) printWarnings(warnings []string) {
	for _, w := range warnings {
		printEscaped(a.stderr, "warning: %s\n", w)
	}
}

func (a *app) resourcesTest(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.TestResource(c.Context, n)
	if err != nil {
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
}

func (a *app) resourcesSet(c *cli.Context) error {
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
	if c.IsSet("gateway") && c.IsSet("gateway-group") {
		return usageError("--gateway and --gateway-group: give one of the two")
	}
	req.Gateway, req.GatewayGroup, req.Host = str("gateway"), str("gateway-group"), str("host")
	if c.IsSet("port") {
		p := c.Int("port")
		req.Port = &p
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	opts := policyOptions(c, map[string]string{})
	kinds, err := client.Kinds(c.Context)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		// The options the flags given set, as the types name them (the
		// server refuses those the resource's type does not have).
		if err := optionsFromFlags(c, k.ResourceFields, opts, true); err != nil {
			return err
		}
	}
	if len(opts) > 0 {
		req.Options = opts
	}
	out, err := client.UpdateResource(c.Context, n, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "resource %s updated\n", out.Name)
	a.printWarnings(out.Warnings)
	return nil
}

func (a *app) resourcesTrustHostKey(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.TrustHostKey(c.Context, n)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "resource %s: pinned host key %s\n", out.Name, out.HostKeyFingerprint)
	return nil
}

func (a *app) resourcesSSHCA(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	r, err := client.Resource(c.Context, n)
	if err != nil {
		return err
	}
	fetch := client.SSHCAPublicKey
	if c.Bool("setup-script") {
		fetch = client.SSHCASetupScript
	}
	body, err := fetch(c.Context, r.ID)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(body)
	return err
}

func (a *app) resourcesList(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.Resources(c.Context)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, r := range out {
		rows = append(rows, []string{r.Name, r.Type, r.Host + ":" + strconv.Itoa(r.Port), dash(r.Gateway), dash(r.GatewayGroup), ts(r.CreatedAt)})
	}
	return printList(c, out, []string{"NAME", "TYPE", "ADDRESS", "GATEWAY", "GROUP", "CREATED"}, rows)
}

func (a *app) resourcesShow(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	r, err := client.Resource(c.Context, n)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, r)
	}
	w := a.stdout
	fmt.Fprintf(w, "name:     %s\ntype:     %s\naddress:  %s:%d\n", r.Name, r.Type, r.Host, r.Port)
	if r.GatewayGroup != "" {
		fmt.Fprintf(w, "group:    %s (any of its gateways)\n", r.GatewayGroup)
	} else {
		fmt.Fprintf(w, "gateway:  %s\n", r.Gateway)
	}
	fmt.Fprintf(w, "created:  %s\n", ts(r.CreatedAt))
	if r.HostKeyFingerprint != "" {
		fmt.Fprintf(w, "host key: %s (pinned)\n", r.HostKeyFingerprint)
	}
	fmt.Fprintln(w, "accounts:")
	for _, acct := range r.Accounts {
		auth := ""
		if acct.Auth != "" {
			auth = ", " + acct.Auth + " auth"
		}
		printEscaped(w, "  %s (username %s%s, MFA %s)\n", acct.Name, dash(acct.Username), auth, yesNo(acct.RequireMFA))
	}
	return nil
}

func (a *app) resourcesRemove(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	if err := client.DeleteResource(c.Context, n); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "resource %s removed\n", n)
	return nil
}

// optionsFromFlags sets opts from the flags of fields that are options
// (api.Field.Flag): a bool as true or false, a textarea from the file its
// flag names (only when given), other fields as the flag's value. With
// onlySet, only the flags given on the command line; otherwise each
// flag's value or default. A field this command has no flag for is left
// to the server's default.
func optionsFromFlags(c *cli.Context, fields []api.Field, opts map[string]string, onlySet bool) error {
	for _, f := range fields {
		flag := optionFlag(f)
		if !f.Option || !hasFlag(c.Command, flag) || (onlySet && !c.IsSet(flag)) {
			continue
		}
		switch f.Type {
		case api.FieldBool:
			opts[f.Name] = fmt.Sprint(c.Bool(flag))
		case api.FieldTextarea:
			if file := c.String(flag); file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				opts[f.Name] = string(b)
			}
		default:
			opts[f.Name] = c.String(flag)
		}
	}
	return optionsFromOptionFlag(c, fields, opts)
}

// optionFlagSlice is --option NAME=VALUE: any setting of a resource type
// by its name in the type's schema, so a type's new setting needs no new
// flag here (the flags above are shorthands for the common ones).
func optionFlagSlice() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: "option", Usage: "NAME=VALUE: a setting of the resource's type by its schema name (GET /api/v1/kinds), also one with no flag of its own (repeat for more)"}
}

// optionsFromOptionFlag sets what --option gives, each checked against
// the type's fields.
func optionsFromOptionFlag(c *cli.Context, fields []api.Field, opts map[string]string) error {
	var names []string
	byName := map[string]api.Field{}
	for _, f := range fields {
		if f.Option {
			names = append(names, f.Name)
			byName[f.Name] = f
		}
	}
	for _, kv := range c.StringSlice("option") {
		name, value, ok := strings.Cut(kv, "=")
		f, known := byName[name]
		switch {
		case !ok || !known:
			return usageError("--option %q: want NAME=VALUE, NAME one of: %s", kv, strings.Join(names, ", "))
		case f.Type == api.FieldBool && value != "true" && value != "false":
			return usageError("--option %s: want true or false", kv)
		}
		opts[name] = value
	}
	return nil
}

// optionFlag is the flag that sets a field.
func optionFlag(f api.Field) string {
	if f.Flag != "" {
		return f.Flag
	}
	return strings.ReplaceAll(f.Name, "_", "-")
}

// hasFlag says whether the command has a flag of that name.
func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// via names what reaches a resource: "gateway NAME" or "gateway group NAME".
func via(r api.Resource) string {
	if r.GatewayGroup != "" {
		return "gateway group " + r.GatewayGroup
	}
	return "gateway " + r.Gateway
}
