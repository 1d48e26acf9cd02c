package mssqlkind

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net"
	"regexp"
	"strings"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// Accounts with auth pkinit log in as a domain user with a short-lived
// certificate from pamd's db-client CA, which the gateway asks for per
// session: no secret is stored.

var sidPattern = regexp.MustCompile(`^S-1-[0-9]+(-[0-9]+){1,14}$`)

// checkPKINIT checks and normalises a pkinit account.
func checkPKINIT(a *store.Account) error {
	switch {
	case a.Username == "" || strings.ContainsAny(a.Username, "@ "):
		return kind.BadRequest("--auth pkinit needs --username, the user's name in the realm (alice, not alice@REALM)")
	case a.Password != "" || a.PrivateKey != "":
		return kind.BadRequest("--auth pkinit stores no secret: the gateway logs in with a certificate from pamd's db-client CA")
	case a.Realm == "":
		return kind.BadRequest("--auth pkinit needs --realm (for example EXAMPLE.COM)")
	case !strings.HasPrefix(a.SPN, "MSSQLSvc/"):
		return kind.BadRequest("--spn: want the server's service principal, MSSQLSvc/HOST:PORT")
	case a.Domain != "":
		return kind.BadRequest("--domain is for --auth ntlm; PKINIT uses --realm")
	case a.KDCCA == "":
		return kind.BadRequest("--auth pkinit needs --kdc-ca-file: the CA that signed the KDC's (domain controller's) certificate")
	case a.SID != "" && !sidPattern.MatchString(a.SID):
		return kind.BadRequest("--sid %q: want the account's SID, S-1-5-21-…", a.SID)
	case a.UPN != "" && (!strings.Contains(a.UPN, "@") || strings.ContainsAny(a.UPN, " ")):
		return kind.BadRequest("--upn %q: want user@domain", a.UPN)
	case a.KDCHostname != "" && strings.ContainsAny(a.KDCHostname, "/:@ "):
		return kind.BadRequest("--kdc-hostname: want the KDC's DNS name")
	}
	if a.KDC != "" {
		if _, _, err := net.SplitHostPort(a.KDC); err != nil && strings.ContainsAny(a.KDC, "/ ") {
			return kind.BadRequest("--kdc: want HOST or HOST:PORT")
		}
	}
	rest, n := []byte(a.KDCCA), 0
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); block.Type != "CERTIFICATE" || err != nil {
			return kind.BadRequest("--kdc-ca-file: a PEM block that is not a certificate")
		}
		n++
	}
	if n == 0 {
		return kind.BadRequest("--kdc-ca-file holds no PEM certificate")
	}
	a.Realm = strings.ToUpper(a.Realm)
	return nil
}

// checkKeytab checks a Kerberos account that logs in with a keytab: it
// must hold a key of the account's principal.
func checkKeytab(a *store.Account) error {
	switch {
	case a.Auth != "kerberos":
		return kind.BadRequest("--keytab-file is for --auth kerberos")
	case a.Password != "":
		return kind.BadRequest("give --keytab-file or --password-stdin, not both")
	case a.Username == "":
		return kind.BadRequest("a SQL Server account needs --username")
	case a.Realm == "":
		return kind.BadRequest("--auth kerberos needs --realm (for example EXAMPLE.COM)")
	case !strings.HasPrefix(a.SPN, "MSSQLSvc/"):
		return kind.BadRequest("--spn: want the server's service principal, MSSQLSvc/HOST:PORT")
	case a.Domain != "":
		return kind.BadRequest("--domain is for --auth ntlm; Kerberos uses --realm")
	}
	raw, err := base64.StdEncoding.DecodeString(a.Keytab)
	if err != nil || len(raw) > 1<<20 {
		return kind.BadRequest("--keytab-file: not a keytab")
	}
	kt := keytab.New()
	if err := kt.Unmarshal(raw); err != nil {
		return kind.BadRequest("--keytab-file: not a keytab (%v)", err)
	}
	a.Realm = strings.ToUpper(a.Realm)
	for _, e := range kt.Entries {
		if e.Principal.Realm == a.Realm && strings.Join(e.Principal.Components, "/") == a.Username {
			return nil
		}
	}
	return kind.BadRequest("--keytab-file holds no key of %s@%s", a.Username, a.Realm)
}
