package cli

import (
	"fmt"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

// pamd ca: the certificates of pamd's CAs and the db-client CA's CRL, for
// what must trust them (a KDC's pkinit_anchors and pkinit_revoke, Active
// Directory's NTAuth store, SQL Server clients).
func (a *app) caCommand() *cli.Command {
	flags := func(usage string) []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "type", Usage: usage},
			&cli.StringFlag{Name: "format", Value: "pem", Usage: "pem or der (binary: redirect it to a file)"},
		}
	}
	return &cli.Command{Name: "ca", Usage: "print pamd's CA certificates and the db-client CA's CRL; rotate the CAs", Subcommands: []*cli.Command{
		{Name: "export", Usage: "print a CA's certificate",
			Description: "--type db-client is what KDCs trust for PKINIT logins (MIT: pkinit_anchors; Active Directory: NTAuth and the trusted roots);\n" +
				"--type resource is what SQL Server clients verify pamd's certificate with; --type server is the CA pamd connect pins.\n" +
				"During a rotation (pamd ca rotate) the PEM holds the current and the next CA, to be trusted both.",
			Flags: flags("db-client, resource or server (required)"), Before: before(noArgs, requireFlags("type")), Action: a.caExport},
		{Name: "crl", Usage: "print the db-client CA's current certificate revocation list",
			Description: "Also served without a login at /pki/db-client.crl on the server's port, the CRL distribution point of its certificates.\n" +
				"MIT KDCs read it from a file: pkinit_revoke = FILE:crl.pem with pkinit_require_crl_checking = true.",
			Flags: flags("db-client (the only CA with a CRL)"), Before: before(noArgs, requireFlags("type")), Action: a.caCRL},
		{Name: "revoke", Usage: "put a db-client certificate on the CRL",
			Description: "The serial is in the audit log's dbclient.issue events (decimal), or openssl's hex (aa:bb:… or 0x…).\n" +
				"KDCs see the revocation once they read the new CRL (publish it again: pamd ca crl, pamd resources ad-setup).",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "type", Usage: "db-client (the only CA that revokes)"},
				&cli.StringFlag{Name: "serial", Usage: "the certificate's serial number (required)"},
			}, Before: before(noArgs, requireFlags("type", "serial")), Action: a.caRevoke},
		a.caRotateCommand(),
	}}
}

// pamd ca rotate: a CA's rotation, with an overlap in which the current
// and the next CA are both trusted.
func (a *app) caRotateCommand() *cli.Command {
	typeFlag := &cli.StringFlag{Name: "type", Usage: "server, gateway, resource, db-client or ssh (required)"}
	resourceFlag := &cli.StringFlag{Name: "resource", Usage: "with --type ssh: the ssh resource whose user CA rotates"}
	step := func(name, usage, description string, more ...cli.Flag) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, Description: description, Flags: append([]cli.Flag{typeFlag, resourceFlag, outputFlag()}, more...),
			Before: before(noArgs, requireFlags("type")), Action: func(c *cli.Context) error { return a.caRotateStep(c, name) }}
	}
	return &cli.Command{Name: "rotate", Usage: "rotate a CA: start (both trusted), then complete or roll back", Subcommands: []*cli.Command{
		step("start", "make a next CA, trusted beside the current one",
			"--type server: logged-in pamd users and connected gateways learn the next fingerprint and trust both.\n"+
				"--type gateway: connected gateways renew from the next CA now (see pamd ca rotate status).\n"+
				"--type resource|db-client: pamd ca export gives both certificates; distribute them before complete.\n"+
				"--type ssh --resource NAME: pamd resources ssh-ca NAME gives both keys; install them on the targets before complete."),
		step("complete", "make the next CA the current one",
			"--type server: the server presents a certificate from the new CA; a login with the old fingerprint is refused.\n"+
				"--type gateway: certificates from the old gateway CA are refused (such a gateway enrols again); refused while an\n"+
				"enrolled gateway still holds a certificate from the current gateway CA, unless --force.\n"+
				"--type ssh --resource NAME: certificates are signed by the new key.",
			&cli.BoolFlag{Name: "force", Usage: "with --type gateway: complete even though gateways still hold a certificate from the current gateway CA (they must enrol again)"}),
		step("rollback", "drop the next CA; everything goes on with the current one", ""),
		{Name: "status", Usage: "show each CA's fingerprint and its rotation, and during a gateway CA rotation which gateway holds which",
			Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.caRotateStatus},
	}}
}

func (a *app) caRotateStep(c *cli.Context, step string) error {
	typ, resource := c.String("type"), c.String("resource")
	switch typ {
	case "server", "gateway", "resource", "db-client":
		if resource != "" {
			return usageError("--resource goes with --type ssh: the %s CA is the server's", typ)
		}
	case "ssh":
		if resource == "" {
			return usageError("--type ssh needs --resource NAME: each ssh resource has its own user CA")
		}
	default:
		return usageError("--type %q: want server, gateway, resource, db-client or ssh", typ)
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	path, label := "/api/v1/ca/"+url.PathEscape(typ)+"/rotate/"+step, typ+" CA"
	q := url.Values{}
	if resource != "" {
		q.Set("resource", resource)
		label = "the ssh user CA of " + resource
	}
	if step == "complete" && c.Bool("force") {
		if typ != "gateway" {
			return usageError("--force goes with --type gateway")
		}
		q.Set("force", "true")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.CARotation
	if err := client.Do(c.Context, "POST", path, nil, &out); err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	switch {
	case out.NextFingerprint != "":
		fmt.Fprintf(a.stdout, "%s: rotation started: current %s, next %s\n", label, out.Fingerprint, out.NextFingerprint)
	case step == "complete":
		fmt.Fprintf(a.stdout, "%s: rotation completed: now %s\n", label, out.Fingerprint)
	default:
		fmt.Fprintf(a.stdout, "%s: rotation rolled back: still %s\n", label, out.Fingerprint)
	}
	if out.Note != "" {
		fmt.Fprintln(a.stdout, out.Note)
	}
	return nil
}

func (a *app) caRotateStatus(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	var out []api.CARotation
	if err := client.Do(c.Context, "GET", "/api/v1/ca/rotations", nil, &out); err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	var rows [][]string
	for _, r := range out {
		next, since := "-", "-"
		if r.NextFingerprint != "" {
			next, since = r.NextFingerprint, ts(r.StartedAt)
		}
		name := r.Type
		if r.Resource != "" {
			name = r.Type + " (" + r.Resource + ")"
		}
		rows = append(rows, []string{name, r.Fingerprint, next, since})
	}
	if err := writeTable(a.stdout, []string{"CA", "CURRENT", "NEXT", "ROTATING SINCE"}, rows); err != nil {
		return err
	}
	for _, r := range out {
		if len(r.Gateways) == 0 {
			continue
		}
		fmt.Fprintln(a.stdout)
		var gws [][]string
		for _, g := range r.Gateways {
			gws = append(gws, []string{g.Name, g.CA, onlineWord(g.Online)})
		}
		if err := writeTable(a.stdout, []string{"GATEWAY", "CERTIFICATE FROM", "STATE"}, gws); err != nil {
			return err
		}
	}
	return nil
}

func onlineWord(online bool) string {
	if online {
		return "online"
	}
	return "offline"
}

func (a *app) caExport(c *cli.Context) error { return a.caFetch(c, "") }

func (a *app) caCRL(c *cli.Context) error { return a.caFetch(c, "/crl") }

func (a *app) caFetch(c *cli.Context, suffix string) error {
	typ, format := c.String("type"), c.String("format")
	switch typ {
	case "db-client", "resource", "server":
	default:
		return usageError("--type %q: want db-client, resource or server", typ)
	}
	if suffix == "/crl" && typ != "db-client" {
		return usageError("--type %s: only the db-client CA publishes a CRL", typ)
	}
	if format != "pem" && format != "der" {
		return usageError("--format %q: want pem or der", format)
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	var out []byte
	if err := client.Do(c.Context, "GET", "/api/v1/ca/"+url.PathEscape(typ)+suffix+"?format="+format, nil, &out); err != nil {
		return err
	}
	_, err = a.stdout.Write(out)
	return err
}

// resourcesADSetup prints pamd resources ad-setup NAME's PowerShell script.
func (a *app) resourcesADSetup(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	r, err := client.Resource(c.Context, n)
	if err != nil {
		return err
	}
	var out []byte
	if err := client.Do(c.Context, "GET", "/api/v1/resources/mssql/"+url.PathEscape(r.ID)+"/ad-setup", nil, &out); err != nil {
		return err
	}
	_, err = a.stdout.Write(out)
	return err
}

func (a *app) caRevoke(c *cli.Context) error {
	if c.String("type") != "db-client" {
		return usageError("--type %q: only the db-client CA revokes certificates", c.String("type"))
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	var out api.RevokeCertificateRequest
	if err := client.Do(c.Context, "POST", "/api/v1/ca/db-client/revoke", api.RevokeCertificateRequest{Serial: c.String("serial")}, &out); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "db-client certificate %s revoked; KDCs refuse it once they read the new CRL (pamd ca crl --type db-client)\n", out.Serial)
	return nil
}
