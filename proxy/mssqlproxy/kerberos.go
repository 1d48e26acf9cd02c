package mssqlproxy

import (
	"fmt"
	"net"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/pamd/pamd/protocol/tunnel"
)

// kerberosToken logs in to the account's realm with its password, gets a
// service ticket for the resource's SPN and returns it as the SPNEGO token
// LOGIN7 carries. Failures say which step failed.
func kerberosToken(d *tunnel.Descriptor) ([]byte, error) {
	cfg := config.New()
	cfg.LibDefaults.DefaultRealm = d.MSSQL.Realm
	cfg.LibDefaults.UDPPreferenceLimit = 1 // TCP: tickets with PACs outgrow UDP
	cfg.LibDefaults.DNSLookupKDC = d.MSSQL.KDC == ""
	where := "the KDC of " + d.MSSQL.Realm + " (found through DNS SRV records)"
	if d.MSSQL.KDC != "" {
		kdc := d.MSSQL.KDC
		if _, _, err := net.SplitHostPort(kdc); err != nil {
			kdc = net.JoinHostPort(kdc, "88")
		}
		cfg.Realms = []config.Realm{{Realm: d.MSSQL.Realm, KDC: []string{kdc}}}
		where = "KDC " + kdc
	}
	cl := client.NewWithPassword(d.MSSQL.Username, d.MSSQL.Realm, d.MSSQL.Password, cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return nil, kerberosError(d, where, "log in as "+d.MSSQL.Username+"@"+d.MSSQL.Realm, err)
	}
	tkt, key, err := cl.GetServiceTicket(d.MSSQL.SPN)
	if err != nil {
		return nil, kerberosError(d, where, "get a ticket for "+d.MSSQL.SPN, err)
	}
	init, err := spnego.NewNegTokenInitKRB5(cl, tkt, key)
	if err != nil {
		return nil, fmt.Errorf("Kerberos: build the SPNEGO token: %w", err)
	}
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: init}
	b, err := tok.Marshal()
	if err != nil {
		return nil, fmt.Errorf("Kerberos: build the SPNEGO token: %w", err)
	}
	return b, nil
}

// kerberosError names what failed in words an administrator acts on.
func kerberosError(d *tunnel.Descriptor, where, step string, err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "KDC_ERR_PREAUTH_FAILED"):
		return fmt.Errorf("Kerberos: pre-authentication failed for %s@%s: the stored password is wrong", d.MSSQL.Username, d.MSSQL.Realm)
	case strings.Contains(s, "KDC_ERR_C_PRINCIPAL_UNKNOWN"):
		return fmt.Errorf("Kerberos: %s does not know the user %s@%s", where, d.MSSQL.Username, d.MSSQL.Realm)
	case strings.Contains(s, "KDC_ERR_S_PRINCIPAL_UNKNOWN"):
		return fmt.Errorf("Kerberos: unknown SPN %s: %s has no such service principal", d.MSSQL.SPN, where)
	case strings.Contains(s, "Networking_Error"), strings.Contains(s, "DNS"), strings.Contains(s, "dial"):
		return fmt.Errorf("Kerberos: %s is unreachable: could not %s", where, step)
	}
	return fmt.Errorf("Kerberos: could not %s at %s: %v", step, where, err)
}
