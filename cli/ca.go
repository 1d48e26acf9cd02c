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
	return &cli.Command{Name: "ca", Usage: "print pamd's CA certificates and the db-client CA's CRL", Subcommands: []*cli.Command{
		{Name: "export", Usage: "print a CA's certificate",
			Description: "--type db-client is what KDCs trust for PKINIT logins (MIT: pkinit_anchors; Active Directory: NTAuth and the trusted roots);\n" +
				"--type resource is what SQL Server clients verify pamd's certificate with; --type server is the CA pamd connect pins.",
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
	}}
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
