package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/proxy/local"
	"github.com/pamd/pamd/proxy/mssqlproxy"
	"github.com/pamd/pamd/server"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
)

var logFormatFlag = &cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"PAMD_LOG_FORMAT"}}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch c.String("log-format") {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, usageError("--log-format %q: want text or json", c.String("log-format"))
}

func roleCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "server",
			Usage: "run the control plane: API, web UI and tunnel endpoint on one port",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data-dir", Value: "./pamd-data", EnvVars: []string{"PAMD_DATA_DIR"}},
				&cli.StringFlag{Name: "listen", Value: ":8443", EnvVars: []string{"PAMD_LISTEN"}},
				&cli.StringFlag{Name: "public-url", Usage: "https://HOST:PORT as gateways and users reach it", EnvVars: []string{"PAMD_PUBLIC_URL"}},
				&cli.StringFlag{Name: "master-key-file", Usage: "default DATA_DIR/master.key (PAMD_MASTER_KEY holds the key itself)", EnvVars: []string{"PAMD_MASTER_KEY_FILE"}},
				&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"PAMD_TLS_CERT"}},
				&cli.StringFlag{Name: "tls-key", EnvVars: []string{"PAMD_TLS_KEY"}},
				&cli.DurationFlag{Name: "gateway-cert-lifetime", Value: 24 * time.Hour, Usage: "how long a gateway's certificate is valid; gateways renew it at half of that", EnvVars: []string{"PAMD_GATEWAY_CERT_LIFETIME"}},
				rotationCheckFlag,
				logFormatFlag,
			},
			Action: func(c *cli.Context) error {
				log, err := newLogger(c)
				if err != nil {
					return err
				}
				cfg := server.Config{
					DataDir: c.String("data-dir"), Listen: c.String("listen"), PublicURL: c.String("public-url"),
					MasterKeyFile: c.String("master-key-file"), MasterKey: os.Getenv("PAMD_MASTER_KEY"),
					TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"), AdminPassword: os.Getenv("PAMD_ADMIN_PASSWORD"),
					Version: version, Logger: log, Out: c.App.Writer, RotationCheck: c.Duration("rotation-check"),
					GatewayCertLifetime: c.Duration("gateway-cert-lifetime"),
				}
				return runServer(c.Context, cfg, nil)
			},
		},
		{
			Name:  "gateway",
			Usage: "run a gateway inside the private network (enrolls once with --token)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "token", Usage: "one-time enrollment token from pamd gateways token", EnvVars: []string{"PAMD_GATEWAY_TOKEN"}},
				&cli.StringFlag{Name: "data-dir", Value: "./pamd-gateway", EnvVars: []string{"PAMD_GATEWAY_DATA_DIR"}},
				&cli.DurationFlag{Name: "record-batch-delay", Value: 200 * time.Millisecond, Usage: "how long session records wait to be uploaded together (they are on disk meanwhile)", EnvVars: []string{"PAMD_RECORD_BATCH_DELAY"}},
				logFormatFlag,
			},
			Action: func(c *cli.Context) error {
				log, err := newLogger(c)
				if err != nil {
					return err
				}
				return gateway.Run(c.Context, gateway.Config{DataDir: c.String("data-dir"), Token: c.String("token"), Version: version, Logger: log,
					RecordBatchDelay: c.Duration("record-batch-delay")})
			},
		},
		{
			Name:  "dev",
			Usage: "evaluate pamd: a server and an enrolled gateway named local in one process",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8443"},
				&cli.StringFlag{Name: "data-dir", Value: "./pamd-dev"},
				&cli.StringFlag{Name: "admin-password", Usage: "the admin's password (for scripting)", EnvVars: []string{"PAMD_ADMIN_PASSWORD"}},
				rotationCheckFlag,
				logFormatFlag,
			},
			Action: runDev,
		},
		connectCommand(),
		sshCommand(),
	}
}

// runServer listens and serves; started, when not nil, runs once the port is open.
func runServer(ctx context.Context, cfg server.Config, started func(*server.Server, net.Addr)) error {
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Store().Close()
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if started != nil {
		go started(srv, ln.Addr())
	}
	return srv.Serve(ctx, ln)
}

func runDev(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	dataDir := c.String("data-dir")
	cfg := server.Config{DataDir: dataDir, Listen: c.String("listen"), AdminPassword: c.String("admin-password"), KeepAdminPassword: true,
		Version: version, Logger: log, Out: c.App.ErrWriter, RotationCheck: c.Duration("rotation-check")}
	return runServer(c.Context, cfg, func(srv *server.Server, addr net.Addr) {
		if pw := c.String("admin-password"); pw != "" {
			if err := srv.SetPassword("admin", pw); err != nil {
				log.Error("set admin password", "err", err)
			}
		}
		url := "https://" + dialable(addr.String())
		gwDir := filepath.Join(dataDir, "gateway")
		id, ok, err := gateway.LoadIdentity(gwDir)
		if err == nil && ok && id.CheckExpiry(time.Now()) != nil {
			ok = false // dev was stopped longer than a certificate lasts: enroll again
		}
		if err == nil && !ok {
			id, err = enrollLocal(srv, url, gwDir)
		}
		if err != nil {
			log.Error("in-process gateway", "err", err)
			return
		}
		id.ServerURL = url // the listen address may have changed since enrollment
		go gateway.Run(c.Context, gateway.Config{Identity: id, DataDir: gwDir, Version: version, Logger: log})
		for i := 0; i < 100 && !srv.GatewayOnline("local"); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		password := c.String("admin-password")
		if password == "" {
			if b, err := os.ReadFile(filepath.Join(dataDir, "initial-admin-password")); err == nil {
				password = strings.TrimSpace(string(b))
			}
		}
		fp := srv.CAFingerprint()
		fmt.Fprintf(c.App.Writer, "pamd dev ready: %s\n", url)
		fmt.Fprintf(c.App.Writer, "  admin user:      admin\n  admin password:  %s\n", dash(password))
		fmt.Fprintf(c.App.Writer, "  CA fingerprint:  %s\n  gateway:         local (in process)\n", fp)
		fmt.Fprintf(c.App.Writer, "  log in with:     pamd login --server %s --user admin --ca-fingerprint %s\n", url, fp)
	})
}

func enrollLocal(srv *server.Server, url, dir string) (*gateway.Identity, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	certPEM, _, err := srv.EnrollLocal("local", key.Public())
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	id := &gateway.Identity{Name: "local", ServerURL: url, Fingerprint: srv.CAFingerprint(), CertPEM: certPEM, KeyPEM: keyPEM}
	return id, id.Save(dir)
}

// dialable turns a listen address into one a local client can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// splitTarget parses RESOURCE/ACCOUNT.
func splitTarget(c *cli.Context) (string, string, error) {
	if c.NArg() != 1 {
		return "", "", usageError("want one RESOURCE/ACCOUNT argument (see pamd ls)")
	}
	res, acct, ok := strings.Cut(c.Args().First(), "/")
	if !ok || res == "" || acct == "" {
		return "", "", usageError("%q: want RESOURCE/ACCOUNT (see pamd ls)", c.Args().First())
	}
	return res, acct, nil
}

func connectCommand() *cli.Command {
	return &cli.Command{
		Name:      "connect",
		Usage:     "open an access session and a local port on 127.0.0.1 for any client",
		ArgsUsage: "RESOURCE/ACCOUNT",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: time.Hour, Usage: "how long the session lasts (capped by your role)"},
			&cli.IntFlag{Name: "port", Usage: "local port (default: a free one)"},
			&cli.StringFlag{Name: "reason", Usage: "why you need access (some roles require one)"},
			&cli.StringFlag{Name: "totp", Usage: "MFA code, for accounts that require one"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			res, acct, err := splitTarget(c)
			if err != nil {
				return err
			}
			if p := c.Int("port"); p < 0 || p > 65535 {
				return usageError("--port %d: want 1 to 65535", p)
			}
			login, client, grant, err := openSession(c, res, acct)
			if err != nil {
				return err
			}
			sess := grant.Session
			cfg := local.Config{
				Server: client.HostPort(), Fingerprint: login.Fingerprint, SessionID: sess.ID, Credential: grant.Credential,
				Listen: net.JoinHostPort("127.0.0.1", fmt.Sprint(c.Int("port"))),
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
				Errors: c.App.ErrWriter,
				Ready: func(a *net.TCPAddr) {
					var knownHosts, caFile string
					if grant.SSHHostKey != "" {
						knownHosts = writeKnownHosts(c, sess.Resource, a.Port, grant.SSHHostKey)
					}
					if grant.TLSCA != "" {
						caFile = writeCAFile(c, grant.TLSCA)
					}
					if jsonOutput(c) {
						out := map[string]any{
							"session_id": sess.ID, "resource": sess.Resource, "account": sess.Account, "type": sess.ResourceType,
							"host": a.IP.String(), "port": a.Port, "expires_at": sess.ExpiresAt,
						}
						if knownHosts != "" {
							out["known_hosts"], out["username"] = knownHosts, grant.Username
						}
						if sess.ResourceType == "mongodb" {
							out["uri"] = fmt.Sprintf("mongodb://127.0.0.1:%d/test?directConnection=true", a.Port)
						}
						if sess.ResourceType == "mssql" {
							out["database"], out["tls_ca_file"] = grant.Database, caFile
						}
						printJSONLine(c.App.Writer, out)
						return
					}
					w := c.App.Writer
					fmt.Fprintf(w, "pamd: session %s to %s/%s until %s\n", sess.ID, sess.Resource, sess.Account, sess.ExpiresAt.Local().Format("15:04:05 MST"))
					fmt.Fprintf(w, "pamd: listening on %s (loopback only); point your client there, no password needed\n", a)
					if sess.ResourceType == "mongodb" {
						uri := fmt.Sprintf("mongodb://127.0.0.1:%d/test?directConnection=true", a.Port)
						fmt.Fprintf(w, "pamd: mongosh \"%s\"\n", uri)
						fmt.Fprintf(w, "pamd: drivers and GUI clients: %s (no user name or password; any database)\n", uri)
					}
					if sess.ResourceType == "mssql" {
						printMSSQLHelp(w, a.Port, grant.Database, caFile)
					}
					if knownHosts != "" {
						opts := fmt.Sprintf("-o UserKnownHostsFile=%s", knownHosts)
						fmt.Fprintf(w, "pamd: ssh -p %d %s %s@127.0.0.1\n", a.Port, opts, grant.Username)
						fmt.Fprintf(w, "pamd: scp -P %d %s FILE %s@127.0.0.1:PATH\n", a.Port, opts, grant.Username)
						fmt.Fprintf(w, "pamd: sftp -P %d %s %s@127.0.0.1\n", a.Port, opts, grant.Username)
					}
					fmt.Fprintf(w, "pamd: Ctrl-C ends the session\n")
				},
			}
			if sess.ResourceType == "mssql" {
				// Refusals (an expired session, a gateway gone) reach SQL
				// Server clients as login errors, not dropped connections.
				cert := mssqlproxy.SelfSignedCertificate()
				cfg.Refuse = func(lc net.Conn, msg string) { mssqlproxy.AnswerWithError(lc, cert, msg) }
			}
			err = local.Run(c.Context, cfg)
			var ended *local.Ended
			if errors.As(err, &ended) {
				return cli.Exit("session "+sess.ID+" ended: "+ended.Reason, 1)
			}
			return err
		},
	}
}

// openSession creates an access session for RESOURCE/ACCOUNT with the
// command's --duration, --reason and --totp, asking for an MFA code on a
// terminal when the account needs one.
func openSession(c *cli.Context, res, acct string) (*apiclient.Login, *apiclient.Client, api.SessionGrant, error) {
	var grant api.SessionGrant
	login, client, err := loggedIn()
	if err != nil {
		return nil, nil, grant, err
	}
	req := api.CreateSessionRequest{Resource: res, Account: acct, Duration: c.Duration("duration").String(), Reason: c.String("reason"), TOTP: c.String("totp")}
	err = client.Do(c.Context, "POST", "/api/v1/sessions", req, &grant)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeMFARequired && req.TOTP == "" && isTerminal() {
		if req.TOTP, err = prompt("MFA code: "); err != nil {
			return nil, nil, grant, err
		}
		err = client.Do(c.Context, "POST", "/api/v1/sessions", req, &grant)
	}
	return login, client, grant, err
}

// printMSSQLHelp prints ready-to-paste lines for SQL Server clients.
func printMSSQLHelp(w io.Writer, port int, database, caFile string) {
	db, tsqlDB := "", ""
	if database != "" {
		db, tsqlDB = " -d "+database, " -D "+database
	}
	fmt.Fprintf(w, "pamd: sqlcmd -S 127.0.0.1,%d%s\n", port, db)
	fmt.Fprintf(w, "pamd: tsql -H 127.0.0.1 -p %d%s -U pamd -P \"\"\n", port, tsqlDB)
	fmt.Fprintf(w, "pamd: GUI clients (SSMS, Azure Data Studio, DBeaver): server 127.0.0.1, port %d, database %s, SQL Server authentication, any user name; leave the password empty\n", port, orDefault(database))
	fmt.Fprintf(w, "pamd: clients that require encryption (ODBC Driver 18, sqlcmd -N) see a certificate signed by pamd's resource CA: trust it with sqlcmd -C or TrustServerCertificate=yes, or add %s to the client's trusted CAs\n", caFile)
}

func orDefault(database string) string {
	if database == "" {
		return "(the login's default)"
	}
	return database
}

// writeCAFile writes pamd's resource CA certificate (which signs what
// gateways show SQL clients, never the server CA) where clients can be told
// to trust it, and returns the path. The name is the one it had when it held
// the server CA, so clients set up then trust the right CA now.
func writeCAFile(c *cli.Context, caPEM string) string {
	dir, err := apiclient.ConfigDir()
	if err != nil {
		return ""
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, []byte(caPEM), 0o644); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "pamd: cannot write %s: %v\n", file, err)
		return ""
	}
	return file
}

// writeKnownHosts writes the resource's pamd host key for [127.0.0.1]:port
// so OpenSSH connects without a prompt, and returns the file's path.
func writeKnownHosts(c *cli.Context, resource string, port int, hostKey string) string {
	dir, err := apiclient.ConfigDir()
	if err != nil {
		return ""
	}
	if err := os.MkdirAll(filepath.Join(dir, "known_hosts"), 0o700); err != nil {
		return ""
	}
	file := filepath.Join(dir, "known_hosts", resource)
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", port, hostKey)
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "pamd: cannot write %s: %v\n", file, err)
		return ""
	}
	return file
}
