package main

import (
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"strings"
	"time"

	"github.com/boombuler/barcode/qr"
	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

// loggedIn returns the saved login and a client for it.
func loggedIn() (*apiclient.Login, *apiclient.Client, error) {
	dir, err := apiclient.ConfigDir()
	if err != nil {
		return nil, nil, err
	}
	l, err := apiclient.LoadLogin(dir)
	if err != nil {
		return nil, nil, err
	}
	if time.Now().After(l.ExpiresAt) {
		return nil, nil, fmt.Errorf("your login to %s expired at %s: run pamd login", l.Server, ts(l.ExpiresAt))
	}
	c, err := l.Client()
	return l, c, err
}

// call runs one API request with the saved login.
func call(c *cli.Context, method, path string, in, out any) error {
	_, client, err := loggedIn()
	if err != nil {
		return err
	}
	return client.Do(c.Context, method, path, in, out)
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usageError("want one argument: %s", what)
	}
	return c.Args().First(), nil
}

func adminCommands() []*cli.Command {
	return []*cli.Command{
		loginCommand(),
		{Name: "logout", Usage: "revoke the token and forget the login", Action: func(c *cli.Context) error {
			dir, err := apiclient.ConfigDir()
			if err != nil {
				return err
			}
			if _, client, err := loggedIn(); err == nil {
				client.Do(c.Context, "POST", "/api/v1/auth/logout", nil, nil)
			}
			if err := apiclient.RemoveLogin(dir); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, "logged out")
			return nil
		}},
		{Name: "whoami", Usage: "show the logged-in user", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			l, client, err := loggedIn()
			if err != nil {
				return err
			}
			var u api.User
			if err := client.Do(c.Context, "GET", "/api/v1/auth/whoami", nil, &u); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c.App.Writer, u)
			}
			fmt.Fprintf(c.App.Writer, "user:     %s\nroles:    %s\nMFA:      %s\nserver:   %s\ntoken to: %s\n",
				u.Name, strings.Join(u.Roles, ", "), yesNo(u.MFAEnabled), l.Server, ts(l.ExpiresAt))
			return nil
		}},
		{Name: "passwd", Usage: "change your password", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "stdin", Usage: "read the current and the new password as two lines from standard input"},
		}, Action: passwd},
		{Name: "mfa", Usage: "multi-factor authentication", Subcommands: []*cli.Command{
			{Name: "enroll", Usage: "enroll a TOTP authenticator app (asks for your password, then the code to confirm)", Flags: []cli.Flag{
				&cli.BoolFlag{Name: "password-stdin", Usage: "read your password as the first line of standard input (the code follows on the next)"},
			}, Action: mfaEnroll},
		}},
		usersCommand(), rolesCommand(), gatewaysCommand(), resourcesCommand(), accountsCommand(),
		{Name: "ls", Usage: "list the resources and accounts you may access", Flags: []cli.Flag{outputFlag}, Action: func(c *cli.Context) error {
			var out []api.CatalogEntry
			if err := call(c, "GET", "/api/v1/catalog", nil, &out); err != nil {
				return err
			}
			rows := [][]string{}
			for _, e := range out {
				gw := e.Gateway
				if !e.GatewayOnline {
					gw += " (offline)"
				}
				rows = append(rows, []string{e.Resource + "/" + e.Account, e.Type, dash(e.Username), gw, e.MaxDuration, yesNo(e.RequireMFA), yesNo(e.RequireReason)})
			}
			return printList(c, out, []string{"TARGET", "TYPE", "USERNAME", "GATEWAY", "MAX", "MFA", "REASON"}, rows)
		}},
		sessionsCommand(), auditCommand(),
	}
}

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "log in to a pamd server and keep a token (12 h) in the config dir",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Required: true, Usage: "https://HOST:PORT", EnvVars: []string{"PAMD_SERVER"}},
			&cli.StringFlag{Name: "user", Required: true},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from standard input"},
			&cli.StringFlag{Name: "totp", Usage: "MFA code"},
			&cli.StringFlag{Name: "ca-fingerprint", Usage: "SHA256:... of the server's CA, as pamd server printed it"},
		},
		Action: func(c *cli.Context) error {
			server, err := apiclient.NormalizeServer(c.String("server"))
			if err != nil {
				return usageError("%v", err)
			}
			fp, err := trustServer(c, server)
			if err != nil {
				return err
			}
			client, err := apiclient.New(server, fp, "")
			if err != nil {
				return err
			}
			var password string
			if c.Bool("password-stdin") {
				password, err = readLine()
			} else {
				password, err = promptSecret("Password for " + c.String("user") + ": ")
			}
			if err != nil {
				return err
			}
			req := api.LoginRequest{Username: c.String("user"), Password: password, TOTP: c.String("totp")}
			var resp api.LoginResponse
			err = client.Do(c.Context, "POST", "/api/v1/auth/login", req, &resp)
			var ae *api.Error
			if errors.As(err, &ae) && ae.Code == api.CodeMFARequired && req.TOTP == "" {
				if req.TOTP, err = prompt("MFA code: "); err != nil {
					return errors.New("this user has MFA: pass --totp CODE")
				}
				err = client.Do(c.Context, "POST", "/api/v1/auth/login", req, &resp)
			}
			if err != nil {
				return err
			}
			dir, err := apiclient.ConfigDir()
			if err != nil {
				return err
			}
			l := &apiclient.Login{Server: server, Fingerprint: fp, User: resp.User.Name, Token: resp.Token, ExpiresAt: resp.ExpiresAt}
			if err := l.Save(dir); err != nil {
				return fmt.Errorf("save login: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "logged in to %s as %s (roles: %s) until %s\n", server, resp.User.Name, strings.Join(resp.User.Roles, ", "), ts(resp.ExpiresAt))
			if resp.User.MustChangePassword {
				fmt.Fprintln(c.App.Writer, "your password is a one-time password: set your own with pamd passwd")
			}
			return nil
		},
	}
}

// trustServer decides how to trust the server: the given fingerprint, the
// system roots, or a fingerprint the person confirms on the terminal.
func trustServer(c *cli.Context, server string) (string, error) {
	if fp := c.String("ca-fingerprint"); fp != "" {
		n, err := pki.NormalizeFingerprint(fp)
		if err != nil {
			return "", usageError("--ca-fingerprint: %v", err)
		}
		return n, nil
	}
	client, _ := apiclient.New(server, "", "")
	if err := client.Do(c.Context, "GET", "/api/v1/info", nil, nil); err == nil {
		return "", nil // publicly trusted certificate: nothing to pin
	}
	chain, err := apiclient.ServerChain(c.Context, server)
	if err != nil {
		return "", err
	}
	fp := pki.Fingerprint(chain[len(chain)-1].Raw)
	if !isTerminal() {
		return "", fmt.Errorf("the server's certificate is not publicly trusted; check its CA fingerprint is %s and pass --ca-fingerprint %s", fp, fp)
	}
	fmt.Fprintf(os.Stderr, "The server presents a CA with fingerprint\n  %s\nCompare it with the one pamd server printed. ", fp)
	ans, err := prompt("Trust it? [y/N] ")
	if err != nil || !strings.EqualFold(strings.TrimSpace(ans), "y") {
		return "", errors.New("server not trusted")
	}
	return fp, nil
}

func passwd(c *cli.Context) error {
	var cur, next string
	var err error
	if c.Bool("stdin") {
		if cur, err = readLine(); err == nil {
			next, err = readLine()
		}
	} else if cur, err = promptSecret("Current password: "); err == nil {
		if next, err = promptSecret("New password: "); err == nil {
			var again string
			if again, err = promptSecret("New password again: "); err == nil && again != next {
				err = errors.New("the new passwords differ")
			}
		}
	}
	if err != nil {
		return err
	}
	if err := call(c, "POST", "/api/v1/auth/password", api.ChangePasswordRequest{Current: cur, New: next}, nil); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "password changed")
	return nil
}

func mfaEnroll(c *cli.Context) error {
	var (
		pw  string
		err error
	)
	if c.Bool("password-stdin") {
		pw, err = readLine()
	} else {
		pw, err = promptSecret("Password: ")
	}
	if err != nil {
		return err
	}
	var e api.MFAEnrollResponse
	if err := call(c, "POST", "/api/v1/mfa/enroll", api.MFAEnrollRequest{Password: pw}, &e); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintln(w, "Scan this code with an authenticator app, or enter the secret by hand.")
	if code, err := qr.Encode(e.URI, qr.M, qr.Auto); err == nil {
		printQR(w, code)
	}
	fmt.Fprintf(w, "secret: %s\nURI:    %s\n", e.Secret, e.URI)
	fmt.Fprint(os.Stderr, "Code from the app: ")
	code, err := readLine()
	if err != nil {
		return err
	}
	if err := call(c, "POST", "/api/v1/mfa/confirm", api.MFAConfirmRequest{Code: code}, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, "MFA enrolled: logins now ask for a code")
	return nil
}

// printQR draws a QR code with half blocks, two module rows a text line,
// light modules as ink so it reads on dark terminals, with a quiet zone.
func printQR(w io.Writer, code image.Image) {
	b := code.Bounds()
	const quiet = 2
	dark := func(x, y int) bool {
		if x < b.Min.X || y < b.Min.Y || x >= b.Max.X || y >= b.Max.Y {
			return false
		}
		r, _, _, _ := code.At(x, y).RGBA()
		return r < 0x8000
	}
	var sb strings.Builder
	for y := b.Min.Y - quiet; y < b.Max.Y+quiet; y += 2 {
		for x := b.Min.X - quiet; x < b.Max.X+quiet; x++ {
			top, bottom := !dark(x, y), !dark(x, y+1)
			switch {
			case top && bottom:
				sb.WriteString("█")
			case top:
				sb.WriteString("▀")
			case bottom:
				sb.WriteString("▄")
			default:
				sb.WriteString(" ")
			}
		}
		sb.WriteString("\n")
	}
	io.WriteString(w, sb.String())
}
