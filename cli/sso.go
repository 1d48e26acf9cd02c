package cli

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/oauth2"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

func (a *app) ssoCommand() *cli.Command {
	return &cli.Command{Name: "sso", Usage: "sign-in through an OpenID Connect provider (SSO)", Subcommands: []*cli.Command{
		{Name: "set", Usage: "configure SSO (the provider must answer its discovery document)", Flags: []cli.Flag{
			&cli.StringFlag{Name: "issuer", Usage: "the provider's issuer URL (required)"},
			&cli.StringFlag{Name: "client-id", Usage: "pamd's client ID at the provider (required)"},
			&cli.BoolFlag{Name: "client-secret-stdin", Usage: "read the client secret from standard input (without it, the stored one is kept)"},
			&cli.StringFlag{Name: "scopes", Value: "openid,profile,email,groups", Usage: "scopes to ask for, comma-separated"},
			&cli.StringFlag{Name: "groups-claim", Value: "groups", Usage: "the ID token claim that lists the user's groups"},
			&cli.StringSliceFlag{Name: "map", Usage: "GROUP=ROLE: members of the provider's GROUP get pamd's ROLE (repeat for more)"},
			&cli.StringFlag{Name: "default-role", Usage: "role every SSO user gets: user when not given, \"\" for none"},
			&cli.BoolFlag{Name: "require-mfa-claim", Usage: "accounts with --require-mfa accept a recent MFA at the provider (ID token amr) instead of a pamd TOTP code"},
			&cli.DurationFlag{Name: "mfa-max-age", Value: 10 * time.Minute, Usage: "how old the provider's MFA may be"},
			outputFlag(),
		}, Before: noArgs, Action: a.ssoSet},
		{Name: "show", Usage: "show the SSO settings (never the client secret) and the redirect URIs to register", Flags: []cli.Flag{outputFlag()}, Before: noArgs, Action: a.ssoShow},
		{Name: "disable", Usage: "turn SSO off (SSO users cannot log in until it is set again)", Before: noArgs, Action: a.ssoDisable},
	}}
}

func (a *app) ssoSet(c *cli.Context) error {
	// Checked here, after -o's own check: a bad -o is named first.
	if err := requireFlags("issuer", "client-id")(c); err != nil {
		return err
	}
	req := api.SSOSettings{Issuer: c.String("issuer"), ClientID: c.String("client-id"), GroupsClaim: c.String("groups-claim"),
		DefaultRole: "user", RequireMFAClaim: c.Bool("require-mfa-claim"), MFAMaxAge: c.Duration("mfa-max-age").String()}
	if c.IsSet("default-role") {
		req.DefaultRole = c.String("default-role")
	}
	for _, s := range strings.Split(c.String("scopes"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			req.Scopes = append(req.Scopes, s)
		}
	}
	for _, m := range c.StringSlice("map") {
		group, role, ok := strings.Cut(m, "=")
		if !ok || group == "" || role == "" {
			return usageError("--map %q: want GROUP=ROLE", m)
		}
		req.Map = append(req.Map, api.SSOGroupRole{Group: group, Role: role})
	}
	if c.Bool("client-secret-stdin") {
		secret, err := a.readLine()
		if err != nil {
			return fmt.Errorf("read the client secret: %w", err)
		}
		if req.ClientSecret = strings.TrimSpace(secret); req.ClientSecret == "" {
			return usageError("--client-secret-stdin: standard input held no secret")
		}
	} else {
		req.KeepSecret = true
	}
	client, err := client(c)
	if err != nil {
		return err
	}
	v, err := client.SetSSO(c.Context, req)
	if err != nil {
		return err
	}
	return a.printSSO(c, v)
}

func (a *app) ssoShow(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	v, err := client.SSO(c.Context)
	if err != nil {
		return err
	}
	return a.printSSO(c, v)
}

func (a *app) printSSO(c *cli.Context, v api.SSOView) error {
	if jsonOutput(c) {
		return printJSON(a.stdout, v)
	}
	if !v.Enabled {
		printEscaped(a.stdout, "SSO:           off\nconsole redirect URI to register: %s\nCLI redirect URI to register:     %s (any port)\n", v.ConsoleRedirectURI, v.CLIRedirectURI)
		return nil
	}
	var maps []string
	for _, m := range v.Map {
		maps = append(maps, m.Group+"="+m.Role)
	}
	printEscaped(a.stdout, "SSO:           on\nissuer:        %s\nclient ID:     %s\nclient secret: %s\nscopes:        %s\ngroups claim:  %s\nmap:           %s\ndefault role:  %s\nMFA claim:     %s (max age %s)\nconsole redirect URI: %s\nCLI redirect URI:     %s (any port)\nupdated:       %s by %s\n",
		v.Issuer, v.ClientID, map[bool]string{true: "set (never shown)", false: "none"}[v.HasSecret], strings.Join(v.Scopes, ","), v.GroupsClaim,
		dash(strings.Join(maps, ", ")), dash(v.DefaultRole), yesNo(v.RequireMFAClaim), v.MFAMaxAge, v.ConsoleRedirectURI, v.CLIRedirectURI, ts(v.UpdatedAt), v.UpdatedBy)
	return nil
}

func (a *app) ssoDisable(c *cli.Context) error {
	client, err := client(c)
	if err != nil {
		return err
	}
	if err := client.DisableSSO(c.Context); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, "SSO disabled")
	return nil
}

// usersSync is pamd users sync NAME.
func (a *app) usersSync(c *cli.Context) error {
	n, client, err := argAndClient(c, "NAME")
	if err != nil {
		return err
	}
	out, err := client.SyncUser(c.Context, n)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(a.stdout, out)
	}
	printEscaped(a.stdout, "%s synced: roles %s (added: %s, removed: %s); %d tokens revoked, %d sessions ended; their next use needs an SSO login\n",
		out.User.Name, strings.Join(out.User.Roles, ", "), dash(strings.Join(out.Added, ", ")), dash(strings.Join(out.Removed, ", ")), out.TokensRevoked, out.SessionsEnded)
	return nil
}

// ssoLogin is pamd login --sso: the authorization code flow with PKCE to
// a loopback redirect (RFC 8252). The CLI keeps the verifier; the server,
// which has the client secret, does the exchange and answers with a token
// as a password login does.
func (a *app) ssoLogin(ctx context.Context, client *apiclient.Client, openBrowser bool) (api.LoginResponse, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return api.LoginResponse{}, fmt.Errorf("listen for the provider's redirect: %w", err)
	}
	defer ln.Close()
	redirect := fmt.Sprintf("http://%s/callback", ln.Addr())
	verifier := oauth2.GenerateVerifier()
	begin, err := client.SSOBegin(ctx, api.SSOBeginRequest{RedirectURI: redirect, CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier)})
	if err != nil {
		return api.LoginResponse{}, err
	}
	type answer struct {
		resp api.LoginResponse
		err  error
	}
	done := make(chan answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != begin.State {
			http.Error(w, "pamd: not this login's redirect", http.StatusBadRequest)
			return
		}
		resp, err := client.SSOFinish(ctx, api.SSOFinishRequest{State: begin.State, Code: q.Get("code"), CodeVerifier: verifier,
			Error: q.Get("error"), ErrorDescription: q.Get("error_description")})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "<!doctype html><title>pamd</title><p>pamd: login failed: %s</p>", html.EscapeString(err.Error()))
		} else {
			fmt.Fprintf(w, "<!doctype html><title>pamd</title><p>pamd: logged in as %s. You can close this tab.</p>", html.EscapeString(resp.User.Name))
		}
		select {
		case done <- answer{resp, err}:
		default:
		}
	})}
	go srv.Serve(ln)
	defer func() {
		// Shutdown, not Close: the browser's page is still being written
		// when the answer arrives.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(a.stderr, "Open this URL to log in through your SSO provider:\n  %s\nWaiting for the browser to come back to %s\n", begin.AuthURL, redirect)
	if openBrowser {
		startBrowser(begin.AuthURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	select {
	case a := <-done:
		return a.resp, a.err
	case <-ctx.Done():
		return api.LoginResponse{}, errors.New("no answer from the browser within 5 minutes: run pamd login --sso again")
	}
}

// startBrowser opens url in the desktop's browser, if there is one; the
// URL is printed in any case.
func startBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}

// ssoDeviceLogin is pamd login --sso --device: the person enters a code at
// the provider on any device while the CLI polls the server.
func (a *app) ssoDeviceLogin(ctx context.Context, client *apiclient.Client) (api.LoginResponse, error) {
	d, err := client.SSODevice(ctx)
	if err != nil {
		return api.LoginResponse{}, err
	}
	printEscaped(a.stderr, "On any device, open\n  %s\nand enter the code %s\n", d.VerificationURI, d.UserCode)
	if d.VerificationURIComplete != "" {
		printEscaped(a.stderr, "(or open %s)\n", d.VerificationURIComplete)
	}
	fmt.Fprintf(a.stderr, "Waiting until %s\n", ts(d.ExpiresAt))
	for {
		p, err := client.SSODevicePoll(ctx, d.Handle)
		switch {
		case err != nil:
			return api.LoginResponse{}, err
		case p.Login != nil:
			return *p.Login, nil
		case time.Now().After(d.ExpiresAt):
			return api.LoginResponse{}, errors.New("the code expired before it was entered: run pamd login --sso --device again")
		}
		select { // the server waited already; a short pause between polls
		case <-ctx.Done():
			return api.LoginResponse{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
