package mssqlproxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pamd/pamd/protocol/tds"
	"github.com/pamd/pamd/protocol/tunnel"
)

// Probe reaches the server as d describes (PRELOGIN, and TLS as the
// resource sets it) and, when d names an account, logs in with it; it says
// the server's version and, after a login, the TDS version accepted.
func (Handler) Probe(ctx context.Context, d *tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	if d.MSSQL == nil {
		return &tunnel.ProbeResult{}, errNoPart
	}
	if d.Account == "" {
		raw, err := dial(ctx, d)
		if err != nil {
			return &tunnel.ProbeResult{}, err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(LoginTimeout))
		conn, version, err := preloginServer(raw, d)
		if err != nil {
			return &tunnel.ProbeResult{}, err
		}
		conn.Close()
		return &tunnel.ProbeResult{Version: "SQL Server " + version + tlsNote(d)}, nil
	}
	c, err := login(ctx, d)
	if err != nil {
		return &tunnel.ProbeResult{}, err
	}
	c.conn.Close()
	return &tunnel.ProbeResult{Version: fmt.Sprintf("SQL Server %s, TDS %v%s", c.server, c.version, tlsNote(d))}, nil
}

// tlsNote says how the gateway spoke to the server.
func tlsNote(d *tunnel.Descriptor) string {
	switch {
	case d.MSSQL.TLSStrict:
		return ", TLS first (TDS 8.0 strict)"
	case d.MSSQL.TLS:
		return ", TLS"
	}
	return ", no TLS"
}

// Login proves the descriptor's credential logs in.
func Login(ctx context.Context, d *tunnel.Descriptor) error {
	c, err := login(ctx, d)
	if err != nil {
		return err
	}
	return c.conn.Close()
}

// ChangePassword sets a SQL login's new password with ALTER LOGIN: as the
// login itself, which SQL Server lets change its own password given the
// old one, or as the rotation account (which needs ALTER ANY LOGIN).
func ChangePassword(ctx context.Context, r *tunnel.Rotation) error {
	if r.Account.MSSQL.Auth != "" && r.Account.MSSQL.Auth != "sql" {
		return fmt.Errorf("account %s logs in with %s: its password belongs to the Windows domain, and pamd rotates SQL logins only", r.Account.Account, r.Account.MSSQL.Auth)
	}
	who := &r.Account
	stmt := "ALTER LOGIN " + quoteName(r.Account.MSSQL.Username) + " WITH PASSWORD = " + quoteString(r.NewPassword)
	if r.With != nil {
		who = r.With
	} else {
		stmt += " OLD_PASSWORD = " + quoteString(r.Account.MSSQL.Password)
	}
	c, err := login(ctx, who)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(LoginTimeout))
	if err := tds.WriteMessage(c.conn, tds.TypeSQLBatch, tds.AppendSQLBatch(nil, stmt), 4096); err != nil {
		return fmt.Errorf("send ALTER LOGIN: %w", err)
	}
	m, err := tds.ReadMessage(c.conn, 1<<20)
	if err != nil {
		return fmt.Errorf("the reply to ALTER LOGIN: %w", err)
	}
	out, _, _, err := tds.ReadReply(m.Payload, c.version, false)
	if err != nil {
		return fmt.Errorf("the reply to ALTER LOGIN: %w", err)
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		text := tunnel.Scrub(scrubText(scrubText(e.Text, &r.Account), r.With), r.NewPassword)
		return fmt.Errorf("ALTER LOGIN %s as %s refused (error %d: %s)", r.Account.MSSQL.Username, who.MSSQL.Username, e.Number, text)
	}
	return nil
}

// login dials the server and logs in with the descriptor's credential.
func login(ctx context.Context, d *tunnel.Descriptor) (*serverLogin, error) {
	raw, err := dial(ctx, d)
	if err != nil {
		return nil, err
	}
	client := &tds.Login7{TDSVersion: uint32(tds.Version74), PacketSize: 4096, ClientProgVer: 0x01000000,
		OptionFlags1: 0xE0, OptionFlags2: 0x03, AppName: "pamd rotation", HostName: "pamd-gateway", CltIntName: "pamd"}
	srv, err := loginServer(raw, d, client)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return srv, nil
}

// dial reaches the server.
func dial(ctx context.Context, d *tunnel.Descriptor) (net.Conn, error) {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raw, err := dialer.DialContext(dctx, "tcp", d.Target)
	if err != nil {
		return nil, fmt.Errorf("the gateway cannot reach %s for resource %s: %v", d.Target, d.Resource, unwrapDial(err))
	}
	return raw, nil
}

// quoteName and quoteString write T-SQL identifiers and Unicode literals.
func quoteName(s string) string   { return "[" + strings.ReplaceAll(s, "]", "]]") + "]" }
func quoteString(s string) string { return "N'" + strings.ReplaceAll(s, "'", "''") + "'" }
