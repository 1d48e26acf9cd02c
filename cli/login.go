package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

func (a *app) loginCommand() *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "log in to a pamd server and keep a token (12 h) in the config dir",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Usage: "https://HOST:PORT (required)", EnvVars: []string{"PAMD_SERVER"}},
			&cli.StringFlag{Name: "user", Usage: "(required without --sso)"},
			&cli.BoolFlag{Name: "sso", Usage: "log in through the server's SSO provider in a browser (the URL is printed too)"},
			&cli.BoolFlag{Name: "no-browser", Usage: "with --sso: only print the URL, do not start a browser"},
			&cli.BoolFlag{Name: "device", Usage: "with --sso: the device grant, for a machine without a browser (enter the printed code on any device)"},
			passwordStdinFlag("read the password from standard input"),
			&cli.StringFlag{Name: "totp", Usage: "MFA code"},
			&cli.StringFlag{Name: "ca-fingerprint", Usage: "SHA256:... of the server's CA, as pamd server printed it"},
		},
		Before: before(noArgs, requireFlags("server"), func(c *cli.Context) error {
			if c.Bool("device") && !c.Bool("sso") {
				return usageError("--device goes with --sso")
			}
			if c.Bool("sso") {
				if c.IsSet("user") || c.Bool("password-stdin") || c.IsSet("totp") {
					return usageError("--sso takes no --user, --password-stdin or --totp: the SSO provider checks who you are")
				}
				return nil
			}
			return requireFlags("user")(c)
		}),
		Action: a.login,
	}
}

func (a *app) login(c *cli.Context) error {
	server, err := apiclient.NormalizeServer(c.String("server"))
	if err != nil {
		return usageError("%v", err)
	}
	fp, err := a.trustServer(c, server)
	if err != nil {
		return err
	}
	client, err := apiclient.New(server, fp, "")
	if err != nil {
		return err
	}
	if c.Bool("sso") {
		login := func() (api.LoginResponse, error) { return a.ssoLogin(c.Context, client, !c.Bool("no-browser")) }
		if c.Bool("device") {
			login = func() (api.LoginResponse, error) { return a.ssoDeviceLogin(c.Context, client) }
		}
		resp, err := login()
		if errors.Is(err, pki.ErrPinMismatch) {
			return pinMismatch(c, server, fp, err)
		}
		if err != nil {
			return err
		}
		return a.saveLogin(c, server, fp, resp)
	}
	var password string
	if c.Bool("password-stdin") {
		password, err = a.readLine()
	} else {
		password, err = a.promptSecret("Password for "+c.String("user")+": ", "password-stdin")
	}
	if err != nil {
		return err
	}
	req := api.LoginRequest{Username: c.String("user"), Password: password, TOTP: c.String("totp")}
	resp, err := client.Login(c.Context, req)
	if errors.Is(err, pki.ErrPinMismatch) {
		return pinMismatch(c, server, fp, err)
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeMFARequired && req.TOTP == "" {
		if req.TOTP, err = a.prompt("MFA code: "); err != nil {
			return errors.New("this user has MFA: pass --totp CODE")
		}
		resp, err = client.Login(c.Context, req)
	}
	if err != nil {
		return err
	}
	return a.saveLogin(c, server, fp, resp)
}

// saveLogin keeps a login's token in the config dir (0600) and says so.
func (a *app) saveLogin(c *cli.Context, server, fp string, resp api.LoginResponse) error {
	dir, err := configDir(c)
	if err != nil {
		return err
	}
	l := &apiclient.Login{Server: server, Fingerprint: fp, User: resp.User.Name, Token: resp.Token, ExpiresAt: resp.ExpiresAt}
	if err := l.Save(dir); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	fmt.Fprintf(a.stdout, "logged in to %s as %s (roles: %s) until %s\n", server, resp.User.Name, strings.Join(resp.User.Roles, ", "), ts(resp.ExpiresAt))
	if resp.User.MustChangePassword {
		fmt.Fprintln(a.stdout, "your password is a one-time password: set your own with pamd passwd")
	}
	return nil
}

// trustServer decides how to trust the server: the given fingerprint, the
// system roots, or a fingerprint the person confirms on the terminal.
func (a *app) trustServer(c *cli.Context, server string) (string, error) {
	if fp := c.String("ca-fingerprint"); fp != "" {
		n, err := pki.NormalizeFingerprint(fp)
		if err != nil {
			return "", usageError("--ca-fingerprint: %v", err)
		}
		return n, nil
	}
	client, _ := apiclient.New(server, "", "")
	if _, err := client.Info(c.Context); err == nil {
		return "", nil // publicly trusted certificate: nothing to pin
	}
	chain, err := apiclient.ServerChain(c.Context, server)
	if err != nil {
		return "", err
	}
	fp := pki.Fingerprint(chain[len(chain)-1].Raw)
	if !a.isTerminal() {
		return "", fmt.Errorf("the server's certificate is not publicly trusted; check its CA fingerprint is %s and pass --ca-fingerprint %s", fp, fp)
	}
	fmt.Fprintf(a.stderr, "The server presents a CA with fingerprint\n  %s\nCompare it with the one pamd server printed. ", fp)
	ans, err := a.prompt("Trust it? [y/N] ")
	if err != nil || !strings.EqualFold(strings.TrimSpace(ans), "y") {
		return "", errors.New("server not trusted")
	}
	return fp, nil
}

// pinMismatch explains a server whose chain does not match the pinned
// fingerprint. What it presents was read over a connection nothing
// verified: its CA may have been rotated, or someone is in between, so
// the person confirms it before using it.
func pinMismatch(c *cli.Context, server, pinned string, err error) error {
	chain, cerr := apiclient.ServerChain(c.Context, server)
	if cerr != nil || len(chain) == 0 {
		return err
	}
	now := pki.Fingerprint(chain[len(chain)-1].Raw)
	return fmt.Errorf("the server presents %s, not the pinned %s: its CA may have been rotated, or someone is in between; confirm %s with the administrator (pamd ca rotate status) before using it (pamd login --ca-fingerprint %s)", now, pinned, now, now)
}

func (a *app) logoutCommand() *cli.Command {
	return &cli.Command{Name: "logout", Usage: "revoke the token and forget the login", Before: noArgs, Action: a.logout}
}

func (a *app) logout(c *cli.Context) error {
	dir, err := configDir(c)
	if err != nil {
		return err
	}
	if client, err := client(c); err == nil {
		client.Logout(c.Context)
	}
	if err := apiclient.RemoveLogin(dir); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "logged out")
	return nil
}

func (a *app) whoamiCommand() *cli.Command {
	return &cli.Command{Name: "whoami", Usage: "show the logged-in user", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.whoami}
}

func (a *app) whoami(c *cli.Context) error {
	l, client, err := loggedIn(c)
	if err != nil {
		return err
	}
	u, err := client.WhoAmI(c.Context)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, u)
	}
	fmt.Fprintf(a.stdout, "user:     %s\nroles:    %s\nMFA:      %s\nserver:   %s\ntoken to: %s\n",
		u.Name, strings.Join(u.Roles, ", "), yesNo(u.MFAEnabled), l.Server, ts(l.ExpiresAt))
	return nil
}

func (a *app) passwdCommand() *cli.Command {
	return &cli.Command{Name: "passwd", Usage: "change your password", Flags: []cli.Flag{
		passwordStdinFlag("read the current and the new password as two lines from standard input"),
	}, Before: noArgs, Action: a.passwd}
}

// passwordStdinFlag is --password-stdin of login and passwd; --stdin, which
// passwd once had, is its alias on both.
func passwordStdinFlag(usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: "password-stdin", Aliases: []string{"stdin"}, Usage: usage}
}

func (a *app) passwd(c *cli.Context) error {
	var cur, next string
	var err error
	if c.Bool("password-stdin") {
		if cur, err = a.readLine(); err == nil {
			next, err = a.readLine()
		}
	} else if cur, err = a.promptSecret("Current password: ", "password-stdin"); err == nil {
		if next, err = a.promptSecret("New password: ", "password-stdin"); err == nil {
			var again string
			if again, err = a.promptSecret("New password again: ", "password-stdin"); err == nil && again != next {
				err = errors.New("the new passwords differ")
			}
		}
	}
	if err != nil {
		return err
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	if err := client.ChangePassword(c.Context, api.ChangePasswordRequest{Current: cur, New: next}); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "password changed")
	return nil
}
