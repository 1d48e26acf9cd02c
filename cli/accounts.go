package cli

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

func (a *app) accountsCommand() *cli.Command {
	return &cli.Command{Name: "accounts", Usage: "manage the accounts (credentials) of resources", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "RESOURCE/NAME", Usage: "add an account", Flags: []cli.Flag{
			&cli.StringFlag{Name: "username"},
			&cli.StringFlag{Name: "auth", Usage: "ssh: password, key or certificate; mssql: sql, ntlm, kerberos or pkinit"},
			&cli.StringFlag{Name: "domain", Usage: "mssql ntlm: the account's Windows domain"},
			&cli.StringFlag{Name: "realm", Usage: "mssql kerberos: the Kerberos realm (EXAMPLE.COM)"},
			&cli.StringFlag{Name: "spn", Usage: "mssql kerberos: the server's SPN (MSSQLSvc/HOST:PORT)"},
			&cli.StringFlag{Name: "kdc", Usage: "mssql kerberos: KDC HOST[:PORT]", DefaultText: "DNS SRV records of the realm"},
			&cli.StringFlag{Name: "upn", Usage: "mssql pkinit: the user principal name in the certificate", DefaultText: "USERNAME@REALM"},
			&cli.StringFlag{Name: "sid", Usage: "mssql pkinit: the account's SID (S-1-5-21-…), for Active Directory's strong certificate mapping"},
			&cli.StringFlag{Name: "kdc-ca-file", Usage: "mssql pkinit: the CA (PEM) that signed the KDC's (domain controller's) certificate"},
			&cli.StringFlag{Name: "kdc-hostname", Usage: "mssql pkinit: the KDC's DNS name in its certificate, when it names no krbtgt/REALM"},
			&cli.StringFlag{Name: "keytab-file", Usage: "mssql kerberos: log in with this keytab instead of a password (stored sealed)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input"},
			&cli.StringFlag{Name: "private-key-file", Usage: "ssh key auth: the private key (OpenSSH or PEM)"},
			&cli.BoolFlag{Name: "passphrase-stdin", Usage: "read the private key's passphrase from standard input"},
			&cli.BoolFlag{Name: "require-mfa", Usage: "sessions need a fresh MFA code"},
			&cli.StringFlag{Name: "description"},
			noLoginCheckFlag(),
			outputFlag(),
		}, Action: a.accountsAdd},
		{Name: "set", ArgsUsage: "RESOURCE/NAME", Usage: "change an account; new secrets replace the stored ones", Flags: append(unchangedByDefault(
			&cli.StringFlag{Name: "username"}, &cli.StringFlag{Name: "auth", Usage: "ssh: password, key or certificate; mssql: sql, ntlm, kerberos or pkinit"},
			&cli.StringFlag{Name: "private-key-file"},
			&cli.StringFlag{Name: "domain", Usage: "mssql ntlm: the account's Windows domain (\"\" clears it, as for the flags below)"},
			&cli.StringFlag{Name: "realm", Usage: "mssql kerberos, pkinit: the Kerberos realm (EXAMPLE.COM)"},
			&cli.StringFlag{Name: "spn", Usage: "mssql kerberos, pkinit: the server's SPN (MSSQLSvc/HOST:PORT)"},
			&cli.StringFlag{Name: "kdc", Usage: "mssql kerberos, pkinit: KDC HOST[:PORT] (\"\": DNS SRV records of the realm)"},
			&cli.StringFlag{Name: "upn", Usage: "mssql pkinit: the user principal name in the certificate (\"\": USERNAME@REALM)"},
			&cli.StringFlag{Name: "sid", Usage: "mssql pkinit: the account's SID (S-1-5-21-…), for Active Directory's strong certificate mapping"},
			&cli.StringFlag{Name: "kdc-ca-file", Usage: "mssql pkinit: the CA (PEM) that signed the KDC's (domain controller's) certificate"},
			&cli.StringFlag{Name: "kdc-hostname", Usage: "mssql pkinit: the KDC's DNS name in its certificate, when it names no krbtgt/REALM"},
			&cli.StringFlag{Name: "keytab-file", Usage: "mssql kerberos: log in with this keytab instead of the password, which it replaces (\"\": with the password again)"},
			&cli.BoolFlag{Name: "require-mfa"}, &cli.StringFlag{Name: "description"}, noLoginCheckFlag(),
			&cli.StringFlag{Name: "rotation-interval", Usage: "rotate the credential on this schedule (30d, 12h; 0 turns it off)"},
			&cli.StringFlag{Name: "rotate-with", Usage: "RESOURCE/ACCOUNT that changes this account's credential (empty: the account itself)"},
		),
			&cli.BoolFlag{Name: "password-stdin", Usage: "read a new password from standard input"},
			&cli.BoolFlag{Name: "passphrase-stdin", Usage: "read the private key's passphrase from standard input"},
		), Action: a.accountsSet},
		{Name: "list", ArgsUsage: "RESOURCE", Usage: "list a resource's accounts", Flags: []cli.Flag{outputFlag()}, Action: a.accountsList},
		{Name: "show", ArgsUsage: "RESOURCE/NAME", Usage: "show an account and its rotation status", Flags: []cli.Flag{outputFlag()}, Action: a.accountsShow},
		{Name: "rotate", ArgsUsage: "RESOURCE/NAME", Usage: "change the account's credential on the target now (through its gateway)", Flags: []cli.Flag{outputFlag()}, Action: a.accountsRotate},
		{Name: "rm", ArgsUsage: "RESOURCE/NAME", Usage: "remove an account", Action: a.accountsRemove},
	}}
}

func (a *app) accountsAdd(c *cli.Context) error {
	res, name, err := splitTarget(c)
	if err != nil {
		return err
	}
	req := api.CreateAccountRequest{Name: name, Username: c.String("username"), Auth: c.String("auth"), RequireMFA: c.Bool("require-mfa"), Description: c.String("description"),
		Domain: c.String("domain"), Realm: c.String("realm"), SPN: c.String("spn"), KDC: c.String("kdc"),
		UPN: c.String("upn"), SID: c.String("sid"), KDCHostname: c.String("kdc-hostname"),
		SkipLoginCheck: c.Bool("no-login-check")}
	if f := c.String("keytab-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		req.Keytab = base64.StdEncoding.EncodeToString(b)
	}
	if f := c.String("kdc-ca-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		req.KDCCA = string(b)
	}
	if c.Bool("password-stdin") {
		if req.Password, err = a.readLine(); err != nil {
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
		if req.Passphrase, err = a.readLine(); err != nil {
			return err
		}
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.CreateAccount(c.Context, res, req)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	fmt.Fprintf(a.stdout, "account %s/%s added\n", out.Resource, out.Name)
	a.printWarnings(out.Warnings)
	return nil
}

func (a *app) accountsSet(c *cli.Context) error {
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
	req.Domain, req.Realm, req.SPN, req.KDC = str("domain"), str("realm"), str("spn"), str("kdc")
	req.UPN, req.SID, req.KDCHostname = str("upn"), str("sid"), str("kdc-hostname")
	req.RotationInterval, req.RotateWith = str("rotation-interval"), str("rotate-with")
	// A file's flag set to "" clears what it gave (an account leaving
	// pkinit, or a keytab for the password again).
	file := func(flag string, encode func([]byte) string) (*string, error) {
		if !c.IsSet(flag) {
			return nil, nil
		}
		v := ""
		if f := c.String(flag); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			v = encode(b)
		}
		return &v, nil
	}
	if req.KDCCA, err = file("kdc-ca-file", func(b []byte) string { return string(b) }); err != nil {
		return err
	}
	if req.Keytab, err = file("keytab-file", base64.StdEncoding.EncodeToString); err != nil {
		return err
	}
	req.SkipLoginCheck = c.Bool("no-login-check")
	if c.IsSet("require-mfa") {
		v := c.Bool("require-mfa")
		req.RequireMFA = &v
	}
	if c.Bool("password-stdin") {
		pw, err := a.readLine()
		if err != nil {
			return err
		}
		req.Password = &pw
	}
	// A Kerberos account logs in with a password or a keytab: the one given
	// replaces the other.
	none := ""
	switch {
	case req.Password != nil && *req.Password != "" && req.Keytab == nil:
		req.Keytab = &none
	case req.Keytab != nil && *req.Keytab != "" && req.Password == nil:
		req.Password = &none
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
		pp, err := a.readLine()
		if err != nil {
			return err
		}
		req.Passphrase = &pp
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	var out api.Account // UpdateAccount, with what the server warns about
	if err := client.Do(c.Context, "PATCH", "/api/v1/resources/"+url.PathEscape(res)+"/accounts/"+url.PathEscape(name), req, &out); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "account %s/%s updated\n", res, name)
	a.printWarnings(out.Warnings)
	return nil
}

func (a *app) accountsList(c *cli.Context) error {
	n, client, err := argAndClient(c, "RESOURCE")
	if err != nil {
		return err
	}
	out, err := client.Accounts(c.Context, n)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, acct := range out {
		rows = append(rows, []string{acct.Resource + "/" + acct.Name, dash(acct.Username), yesNo(acct.HasPassword || acct.HasKey), yesNo(acct.RequireMFA), rotationSummary(acct.Rotation), dash(acct.Description)})
	}
	return printList(c, out, []string{"ACCOUNT", "USERNAME", "SECRET", "MFA", "ROTATION", "DESCRIPTION"}, rows)
}

func (a *app) accountsShow(c *cli.Context) error {
	res, name, err := splitTarget(c)
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	all, err := client.Accounts(c.Context, res)
	if err != nil {
		return err
	}
	for _, acct := range all {
		if acct.Name == name {
			if jsonOutput(c) {
				return printJSON(a.stdout, acct)
			}
			printAccount(a.stdout, acct)
			return nil
		}
	}
	return fmt.Errorf("resource %s has no account %q", res, name)
}

func (a *app) accountsRotate(c *cli.Context) error {
	res, name, err := splitTarget(c)
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	out, err := client.RotateAccount(c.Context, res, name)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		if err := printJSON(a.stdout, out); err != nil {
			return err
		}
	}
	return a.reportRotation(c, out)
}

func (a *app) accountsRemove(c *cli.Context) error {
	res, name, err := splitTarget(c)
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	if err := client.DeleteAccount(c.Context, res, name); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "account %s/%s removed\n", res, name)
	return nil
}

// noLoginCheckFlag stores an account without logging in with it first.
func noLoginCheckFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-login-check", Usage: "store the account without logging in to the target with it first (the target is down, or does not trust the SSH CA yet)"}
}
