package mssqlproxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tunnel"
)

// kerberosToken returns the SPNEGO token LOGIN7 carries for an account
// with auth kerberos (its password) or pkinit (a db-client certificate):
// a service ticket for the resource's SPN from the account's TGT, which
// is reused across connections until it nearly expires (windows.go), in
// an AP-REQ that requires mutual authentication (mutual.go), and what
// the server's AP-REP must prove. Failures say which step failed.
func kerberosToken(d *tunnel.Descriptor) ([]byte, *apExchange, error) {
	ctx, cancel := context.WithTimeout(context.Background(), LoginTimeout)
	defer cancel()
	cl, err := windows.client(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	tkt, key, err := cl.GetServiceTicket(d.MSSQL.SPN)
	if err != nil {
		return nil, nil, kerberosError(d, kdcWhere(d), "get a ticket for "+d.MSSQL.SPN, err)
	}
	init, ap, err := negTokenInitMutual(cl, tkt, key)
	if err != nil {
		return nil, nil, fmt.Errorf("Kerberos: build the SPNEGO token: %w", err)
	}
	ap.server, ap.spn = d.Target, d.MSSQL.SPN
	tok := spnego.SPNEGOToken{Init: true, NegTokenInit: init}
	b, err := tok.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("Kerberos: build the SPNEGO token: %w", err)
	}
	return b, ap, nil
}

// krb5Config is the gokrb5 configuration for the account's realm.
func krb5Config(d *tunnel.Descriptor) *config.Config {
	cfg := config.New()
	cfg.LibDefaults.DefaultRealm = d.MSSQL.Realm
	cfg.LibDefaults.UDPPreferenceLimit = 1 // TCP: tickets with PACs outgrow UDP
	cfg.LibDefaults.DNSLookupKDC = d.MSSQL.KDC == ""
	if d.MSSQL.KDC != "" {
		cfg.Realms = []config.Realm{{Realm: d.MSSQL.Realm, KDC: []string{kdcAddr(d.MSSQL.KDC)}}}
	}
	return cfg
}

func kdcAddr(kdc string) string {
	if _, _, err := net.SplitHostPort(kdc); err != nil {
		return net.JoinHostPort(kdc, "88")
	}
	return kdc
}

// kdcWhere names the KDC for messages.
func kdcWhere(d *tunnel.Descriptor) string {
	if d.MSSQL.KDC != "" {
		return "KDC " + kdcAddr(d.MSSQL.KDC)
	}
	return "the KDC of " + d.MSSQL.Realm + " (found through DNS SRV records)"
}

// passwordTGT is an AS exchange with the account's password or keytab
// (gokrb5), without a gokrb5 login session: the TGT is kept in
// windows.go's cache, so nothing renews it in the background.
func passwordTGT(d *tunnel.Descriptor) (*pkinit.TGT, error) {
	cfg := krb5Config(d)
	cl := client.NewWithPassword(d.MSSQL.Username, d.MSSQL.Realm, d.MSSQL.Password, cfg, client.DisablePAFXFAST(true))
	if d.MSSQL.Keytab != "" {
		raw, err := base64.StdEncoding.DecodeString(d.MSSQL.Keytab)
		kt := keytab.New()
		if err == nil {
			err = kt.Unmarshal(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("Kerberos: the keytab of account %s does not load", d.Account)
		}
		cl = client.NewWithKeytab(d.MSSQL.Username, d.MSSQL.Realm, kt, cfg, client.DisablePAFXFAST(true))
	}
	defer cl.Destroy()
	req, err := messages.NewASReqForTGT(d.MSSQL.Realm, cfg, types.NewPrincipalName(1, d.MSSQL.Username))
	if err != nil {
		return nil, fmt.Errorf("Kerberos: AS-REQ: %w", err)
	}
	rep, err := cl.ASExchange(d.MSSQL.Realm, req, 0)
	if err != nil {
		return nil, kerberosError(d, kdcWhere(d), "log in as "+d.MSSQL.Username+"@"+d.MSSQL.Realm, err)
	}
	return &pkinit.TGT{Reply: rep}, nil
}

// kerberosError names what failed in words an administrator acts on.
func kerberosError(d *tunnel.Descriptor, where, step string, err error) error {
	var ke messages.KRBError
	if errors.As(err, &ke) {
		switch ke.ErrorCode {
		case pkinit.CodePreauthFailed:
			return fmt.Errorf("Kerberos: pre-authentication failed for %s@%s: the stored %s is wrong", d.MSSQL.Username, d.MSSQL.Realm, secretName(d))
		case pkinit.CodeCPrincipalUnknown:
			return fmt.Errorf("Kerberos: %s does not know the user %s@%s", where, d.MSSQL.Username, d.MSSQL.Realm)
		case 7: // KDC_ERR_S_PRINCIPAL_UNKNOWN
			return fmt.Errorf("Kerberos: unknown SPN %s: %s has no such service principal", d.MSSQL.SPN, where)
		}
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "KDC_ERR_PREAUTH_FAILED"):
		return fmt.Errorf("Kerberos: pre-authentication failed for %s@%s: the stored %s is wrong", d.MSSQL.Username, d.MSSQL.Realm, secretName(d))
	case strings.Contains(s, "KDC_ERR_C_PRINCIPAL_UNKNOWN"):
		return fmt.Errorf("Kerberos: %s does not know the user %s@%s", where, d.MSSQL.Username, d.MSSQL.Realm)
	case strings.Contains(s, "KDC_ERR_S_PRINCIPAL_UNKNOWN"):
		return fmt.Errorf("Kerberos: unknown SPN %s: %s has no such service principal", d.MSSQL.SPN, where)
	case strings.Contains(s, "matching key not found in keytab"):
		return fmt.Errorf("Kerberos: the stored keytab holds no key of %s@%s of the types the KDC asks for: export a keytab of this principal (ktpass or ktadd)", d.MSSQL.Username, d.MSSQL.Realm)
	case strings.Contains(s, "Networking_Error"), strings.Contains(s, "DNS"), strings.Contains(s, "dial"):
		return fmt.Errorf("Kerberos: %s is unreachable: could not %s", where, step)
	}
	return fmt.Errorf("Kerberos: could not %s at %s: %v", step, where, err)
}

func secretName(d *tunnel.Descriptor) string {
	if d.MSSQL.Keytab != "" {
		return "keytab"
	}
	return "password"
}
