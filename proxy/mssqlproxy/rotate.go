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

// Login proves the descriptor's credential logs in.
func Login(ctx context.Context, d *tunnel.Descriptor) error {
	c, err := login(ctx, d)
	if err != nil {
		return err
	}
	return c.Close()
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
	defer c.Close()
	c.SetDeadline(time.Now().Add(LoginTimeout))
	if err := tds.WriteMessage(c, tds.TypeSQLBatch, tds.AppendSQLBatch(nil, stmt), 4096); err != nil {
		return fmt.Errorf("send ALTER LOGIN: %w", err)
	}
	m, err := tds.ReadMessage(c, 1<<20)
	if err != nil {
		return fmt.Errorf("the reply to ALTER LOGIN: %w", err)
	}
	out, _, _, err := tds.ReadReply(m.Payload, false)
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
func login(ctx context.Context, d *tunnel.Descriptor) (net.Conn, error) {
	var dialer net.Dialer
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	raw, err := dialer.DialContext(dctx, "tcp", d.Target)
	if err != nil {
		return nil, fmt.Errorf("the gateway cannot reach %s for resource %s: %v", d.Target, d.Resource, unwrapDial(err))
	}
	client := &tds.Login7{TDSVersion: 0x74000004, PacketSize: 4096, ClientProgVer: 0x01000000,
		OptionFlags1: 0xE0, OptionFlags2: 0x03, AppName: "pamd rotation", HostName: "pamd-gateway", CltIntName: "pamd"}
	conn, _, _, err := loginServer(raw, d, client)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// quoteName and quoteString write T-SQL identifiers and Unicode literals.
func quoteName(s string) string   { return "[" + strings.ReplaceAll(s, "]", "]]") + "]" }
func quoteString(s string) string { return "N'" + strings.ReplaceAll(s, "'", "''") + "'" }
