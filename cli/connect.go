package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/internal/procs"
	"github.com/pamd/pamd/proxy/local"
	"github.com/pamd/pamd/proxy/mssqlproxy"
	"github.com/pamd/pamd/proxy/postgresproxy"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

// sessionFlags are what opening an access session takes (connect, ssh).
func sessionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "duration", Value: time.Hour, Usage: "how long the session lasts (capped by your role)"},
		&cli.StringFlag{Name: "reason", Usage: "why you need access (some roles require one)"},
		&cli.StringFlag{Name: "totp", Usage: "MFA code, for accounts that require one"},
	}
}

func (a *app) connectCommand() *cli.Command {
	return &cli.Command{
		Name:      "connect",
		Usage:     "open an access session and a local port on 127.0.0.1 for any client",
		ArgsUsage: "RESOURCE/ACCOUNT [--exec [CLIENT] [-- CLIENT ARGS...]]",
		Description: "With --exec, pamd connect runs the resource's native client (ssh, sqlcmd, tsql, mongosh, psql...:\n" +
			"the one named, or the first found on PATH) pointed at the local port, passes the arguments after --\n" +
			"on to it, and ends the session when the client exits, with the client's exit status.",
		Flags: append(append(sessionFlags(),
			&cli.IntFlag{Name: "port", Usage: "local port", DefaultText: "a free one"},
			&cli.BoolFlag{Name: "exec", Usage: "run the native client against the local port; the session ends when it exits"},
			outputFlag(),
		), logFlags("warn")...),
		Action: a.connect,
	}
}

func (a *app) connect(c *cli.Context) error {
	if c.Bool("exec") {
		return a.connectExec(c)
	}
	res, acct, err := splitTarget(c)
	if err != nil {
		return err
	}
	if p := c.Int("port"); p < 0 || p > 65535 {
		return usageError("--port %d: want 1 to 65535", p)
	}
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	login, client, grant, err := a.openSession(c, res, acct)
	if err != nil {
		return err
	}
	cfg := localConfig(c, login, client, grant, log, a.stderr)
	cfg.Ready = func(addr *net.TCPAddr) { a.connectReady(c, grant, addr) }
	procs.Adapt(c.Context, log)
	err = local.Run(c.Context, cfg)
	var ended *local.Ended
	if errors.As(err, &ended) {
		return cli.Exit("session "+grant.Session.ID+" ended: "+ended.Reason, 1)
	}
	return err
}

// localConfig is the local listener of pamd connect for grant, on
// 127.0.0.1 and the command's --port.
func localConfig(c *cli.Context, login *apiclient.Login, client *apiclient.Client, grant api.SessionGrant, log *slog.Logger, errs io.Writer) local.Config {
	cfg := local.Config{
		Server: client.HostPort(), Fingerprint: login.Fingerprint, NextFingerprint: login.NextFingerprint, Pins: loginPins(c, login),
		SessionID: grant.Session.ID, Credential: grant.Credential,
		Listen: net.JoinHostPort("127.0.0.1", fmt.Sprint(c.Int("port"))),
		Logger: log,
		Errors: errs,
	}
	if refuse, ok := refusals[grant.Refusal]; ok {
		cfg.Refuse = refuse()
	}
	return cfg
}

// refusals make the local listener's refusal (an expired session, a
// gateway gone) for each style a grant names (api.SessionGrant.Refusal),
// so that the client shows why rather than a dropped connection.
var refusals = map[string]func() func(net.Conn, string){
	api.RefusalTDS: func() func(net.Conn, string) { // SQL Server clients: a login error
		cert := mssqlproxy.SelfSignedCertificate()
		return func(lc net.Conn, msg string) { mssqlproxy.AnswerWithError(lc, cert, msg) }
	},
	api.RefusalPostgres: func() func(net.Conn, string) { // PostgreSQL clients: a FATAL error
		cert := mssqlproxy.SelfSignedCertificate()
		return func(lc net.Conn, msg string) { postgresproxy.AnswerWithError(lc, cert, "08001", msg) }
	},
}

// connectReady tells the person (or, with -o json, the script) where the
// local port is and how each kind of client uses it.
func (a *app) connectReady(c *cli.Context, grant api.SessionGrant, addr *net.TCPAddr) {
	sess := grant.Session
	fill, usable := a.clientTemplates(c, grant, addr)
	if jsonOutput(c) {
		out := map[string]any{
			"session_id": sess.ID, "resource": sess.Resource, "account": sess.Account, "type": sess.ResourceType,
			"host": addr.IP.String(), "port": addr.Port, "expires_at": sess.ExpiresAt,
		}
		for k, v := range grant.ClientFields {
			if usable(v) {
				out[k] = fill(v)
			}
		}
		printJSONLine(a.stdout, out)
		return
	}
	w := a.stdout
	fmt.Fprintf(w, "pamd: session %s to %s/%s until %s\n", sess.ID, sess.Resource, sess.Account, sess.ExpiresAt.Local().Format("15:04:05 MST"))
	fmt.Fprintf(w, "pamd: listening on %s (loopback only); point your client there, no password needed\n", addr)
	for _, l := range grant.ClientLines {
		if usable(l) {
			fmt.Fprintln(w, fill(l))
		}
	}
	fmt.Fprintf(w, "pamd: Ctrl-C ends the session\n")
}

// clientTemplates writes the files a grant's client lines name (known_hosts,
// the CA file) and returns how to fill in a template (grant.ClientLines,
// ClientFields, ClientCommands) and whether one can be used: a line naming
// a known_hosts file that could not be written cannot.
func (a *app) clientTemplates(c *cli.Context, grant api.SessionGrant, addr *net.TCPAddr) (fill func(string) string, usable func(string) bool) {
	var knownHosts, caFile string
	if grant.SSHHostKey != "" {
		knownHosts = a.writeKnownHosts(c, grant.Session.Resource, addr.Port, grant.SSHHostKey)
	}
	if grant.TLSCA != "" {
		caFile = a.writeCAFile(c, grant.TLSCA)
	}
	fill = strings.NewReplacer("{port}", strconv.Itoa(addr.Port), "{known_hosts}", knownHosts, "{tls_ca_file}", caFile).Replace
	usable = func(t string) bool { return knownHosts != "" || !strings.Contains(t, "{known_hosts}") }
	return fill, usable
}

// openSession creates an access session for RESOURCE/ACCOUNT with the
// command's --duration, --reason and --totp, asking for an MFA code on a
// terminal when the account needs one.
func (a *app) openSession(c *cli.Context, res, acct string) (*apiclient.Login, *apiclient.Client, api.SessionGrant, error) {
	var grant api.SessionGrant
	login, client, err := loggedIn(c)
	if err != nil {
		return nil, nil, grant, err
	}
	req := api.CreateSessionRequest{Resource: res, Account: acct, Duration: c.Duration("duration").String(), Reason: c.String("reason"), TOTP: c.String("totp")}
	grant, err = client.CreateSession(c.Context, req)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeMFARequired && req.TOTP == "" && a.isTerminal() {
		if req.TOTP, err = a.prompt("MFA code: "); err != nil {
			return nil, nil, grant, err
		}
		grant, err = client.CreateSession(c.Context, req)
	}
	if errors.As(err, &ae) && ae.Code == api.CodeNotGranted {
		err = fmt.Errorf("%s: see pamd ls for what you may access", ae.Message)
	}
	return login, client, grant, err
}

// writeCAFile writes pamd's resource CA certificate (which signs what
// gateways show SQL clients, never the server CA) where clients can be told
// to trust it, and returns the path. The name is the one it had when it held
// the server CA, so clients set up then trust the right CA now.
func (a *app) writeCAFile(c *cli.Context, caPEM string) string {
	dir, err := configDir(c)
	if err != nil {
		return ""
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, []byte(caPEM), 0o644); err != nil {
		fmt.Fprintf(a.stderr, "pamd: cannot write %s: %v\n", file, err)
		return ""
	}
	return file
}

// writeKnownHosts writes the resource's pamd host key for [127.0.0.1]:port
// so OpenSSH connects without a prompt, and returns the file's path.
func (a *app) writeKnownHosts(c *cli.Context, resource string, port int, hostKey string) string {
	dir, err := configDir(c)
	if err != nil {
		return ""
	}
	if err := os.MkdirAll(filepath.Join(dir, "known_hosts"), 0o700); err != nil {
		return ""
	}
	file := filepath.Join(dir, "known_hosts", resource)
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", port, hostKey)
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		fmt.Fprintf(a.stderr, "pamd: cannot write %s: %v\n", file, err)
		return ""
	}
	return file
}
