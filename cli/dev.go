package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/gateway"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server"
)

func (a *app) devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "evaluate pamd: a server and an enrolled gateway named local in one process",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8443"},
			&cli.StringFlag{Name: "data-dir", Value: "./pamd-dev"},
			&cli.StringFlag{Name: "admin-password", Usage: "the admin's password (for scripting)", EnvVars: []string{"PAMD_ADMIN_PASSWORD"}},
			rotationCheckFlag(),
		}, logFlags("info")...),
		Before: noArgs,
		Action: a.runDev,
	}
}

func (a *app) runDev(c *cli.Context) error {
	log, err := newLogger(c, a.stderr)
	if err != nil {
		return err
	}
	dataDir := c.String("data-dir")
	cfg := server.Config{DataDir: dataDir, Listen: c.String("listen"), AdminPassword: c.String("admin-password"), KeepAdminPassword: true,
		Version: a.version, Logger: log, Out: a.stderr, RotationCheck: c.Duration("rotation-check")}
	return serve(c.Context, cfg, func(srv *server.Server, addr net.Addr) {
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
		go gateway.Run(c.Context, gateway.Config{Identity: id, DataDir: gwDir, Version: a.version, Logger: log})
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
		w := a.stdout
		fmt.Fprintf(w, "pamd dev ready: %s\n", url)
		fmt.Fprintf(w, "  admin user:      admin\n  admin password:  %s\n", dash(password))
		fmt.Fprintf(w, "  CA fingerprint:  %s\n  gateway:         local (in process)\n", fp)
		fmt.Fprintf(w, "  log in with:     pamd login --server %s --user admin --ca-fingerprint %s\n", url, fp)
	})
}

// enrollLocal enrolls dev's in-process gateway, named local, without a token.
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
