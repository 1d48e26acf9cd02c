package mssqlkind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// DefaultPort is the port of a resource that names none.
const DefaultPort = 1433

// Kind is the mssql kind.
type Kind struct{ env kind.Env }

// New returns the mssql kind.
func New(env kind.Env) *Kind { return &Kind{env: env} }

// options are an mssql resource's settings, parsed from the stored map.
type options struct {
	Database string // database
	TLS      kind.TLS
	Strict   bool // tls_strict: TDS 8.0, TLS before PRELOGIN
}

func stored(o map[string]string) options {
	return options{Database: o["database"], TLS: kind.StoredTLS(o), Strict: o["tls_strict"] == "true"}
}

// parse checks a resource's options and stores them normalised in o.
func parse(o map[string]string) ([]string, error) {
	t, warnings, err := kind.ParseTLS(o, "SQL Server")
	if err != nil {
		return nil, err
	}
	switch o["tls_strict"] {
	case "", "false":
		delete(o, "tls_strict")
	case "true":
		if !t.Enabled {
			return nil, kind.BadRequest("tls_strict (TDS 8.0) is TLS: it cannot go with --tls=false")
		}
	default:
		return nil, kind.BadRequest("tls_strict: want true or false")
	}
	t.Put(o)
	return warnings, nil
}

var (
	windowsAuth = &api.Condition{Field: "auth", Values: []string{"ntlm", "kerberos", "pkinit"}}
	pkinitAuth  = &api.Condition{Field: "auth", Values: []string{"pkinit"}}
)

func (k *Kind) Schema() api.Kind {
	return api.Kind{
		Name: tunnel.ProtocolMSSQL, Label: "SQL Server",
		ResourceFields: append(append(kind.AddressFields(DefaultPort),
			api.Field{Name: "database", Label: "Database", Type: api.FieldText, Option: true, Placeholder: "where clients land", Edit: true}),
			append(kind.TLSFields(), api.Field{Name: "tls_strict", Label: "TDS 8.0 strict encryption (TLS before PRELOGIN)", Type: api.FieldBool, Option: true, Default: "false", Edit: true})...),
		AccountFields: []api.Field{
			{Name: "username", Label: "User name", Type: api.FieldText, Required: true, Edit: true},
			{Name: "auth", Label: "Auth", Type: api.FieldSelect, Choices: []string{"sql", "ntlm", "kerberos", "pkinit"}, Default: "sql"},
			{Name: "password", Label: "Password", Type: api.FieldSecret, Required: true, Edit: true, Keep: true},
			{Name: "domain", Label: "Domain (NTLM)", Type: api.FieldText, ShowIf: windowsAuth},
			{Name: "realm", Label: "Realm (Kerberos)", Type: api.FieldText, ShowIf: windowsAuth},
			{Name: "spn", Label: "SPN (Kerberos)", Type: api.FieldText, Placeholder: "MSSQLSvc/host:1433", ShowIf: windowsAuth},
			{Name: "kdc", Label: "KDC (optional)", Type: api.FieldText, Placeholder: "from DNS SRV records", ShowIf: windowsAuth},
			{Name: "upn", Label: "UPN (PKINIT, optional)", Type: api.FieldText, Placeholder: "username@REALM", ShowIf: pkinitAuth},
			{Name: "sid", Label: "SID (PKINIT, AD strong mapping)", Type: api.FieldText, Placeholder: "S-1-5-21-…", ShowIf: pkinitAuth},
			{Name: "kdc_ca", Label: "KDC's CA certificate (PKINIT, PEM)", Type: api.FieldTextarea, ShowIf: pkinitAuth},
			{Name: "kdc_hostname", Label: "KDC host name in its certificate (PKINIT, optional)", Type: api.FieldText, Placeholder: "only krbtgt/REALM", ShowIf: pkinitAuth},
		},
		Rotates:       true,
		AccessCommand: "pamd connect",
	}
}

func (k *Kind) Records() bool { return true }

func (k *Kind) Defaults(req *api.Resource) {
	if req.Port == 0 {
		req.Port = DefaultPort
	}
}

func (k *Kind) Create(ctx context.Context, res *store.Resource, opts map[string]string, out *kind.Outcome) error {
	o := map[string]string{}
	for key, v := range opts {
		o[key] = v
	}
	warnings, err := parse(o)
	if err != nil {
		return err
	}
	res.Options = o
	if _, _, err := k.env.ResourceCertificate(res); err != nil {
		return err
	}
	if db := stored(o).Database; db != "" {
		out.Detail += ", database " + db
	}
	out.Warnings = warnings
	if len(warnings) > 0 {
		out.Detail += "; " + strings.Join(warnings, "; ")
	}
	return nil
}

func (k *Kind) Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, _ bool, out *kind.Outcome) error {
	if len(u.Options) > 0 {
		merged := kind.MergeOptions(res.Options, u.Options, &out.Changed)
		warnings, err := parse(merged)
		if err != nil {
			return err
		}
		res.Options, out.Warnings = merged, warnings
	}
	_, err := kind.UpdateAddress(res, u, out)
	return err
}

// CheckAccount checks an account's settings, then, unless the admin said
// --no-login-check, logs in with it through the gateway as pamd resources
// test does, refusing it with the server's (or KDC's) reason. A pkinit
// account is stored unchecked: its certificate is signed for a live session
// only. An update drops the secrets its auth does not use.
func (k *Kind) CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error {
	if a.Auth == "" {
		a.Auth = "sql"
	}
	if update {
		switch a.Auth {
		case "pkinit":
			a.Password, a.Keytab = "", ""
		case "sql", "ntlm":
			a.Keytab = ""
		}
	}
	if err := checkSettings(a); err != nil {
		return err
	}
	if !kind.LoginCheck(ctx) {
		return nil
	}
	if a.Auth == "pkinit" {
		kind.Note(ctx, "account %s is stored without a login check: a pkinit account logs in with a certificate pamd signs for a live session only (pamd connect %s/%s tries it)", a.Name, res.Name, a.Name)
		return nil
	}
	if _, err := k.probe(ctx, res, a); err != nil {
		// The gateway's words are for a stored account; this one is not yet.
		return kind.LoginFailed(a, res, errors.New(strings.TrimSuffix(err.Error(), "; an administrator must update the account")))
	}
	return nil
}

// checkSettings checks (and normalises) an account's login settings.
func checkSettings(a *store.Account) error {
	if a.Auth == "pkinit" {
		return checkPKINIT(a)
	}
	if a.UPN != "" || a.SID != "" || a.KDCCA != "" || a.KDCHostname != "" {
		return kind.BadRequest("--upn, --sid, --kdc-ca-file and --kdc-hostname are for --auth pkinit")
	}
	if a.Keytab != "" {
		return checkKeytab(a)
	}
	if a.Username == "" || a.Password == "" {
		return kind.BadRequest("a SQL Server account needs --username and --password-stdin")
	}
	if a.PrivateKey != "" {
		return kind.BadRequest("SQL Server accounts log in with a password, not a key")
	}
	switch a.Auth {
	case "sql":
		if a.Domain != "" || a.Realm != "" || a.SPN != "" || a.KDC != "" {
			return kind.BadRequest("--domain, --realm, --spn and --kdc are for --auth ntlm or kerberos")
		}
	case "ntlm":
		if a.Domain == "" {
			return kind.BadRequest("--auth ntlm needs --domain (the account's Windows domain)")
		}
		if a.Realm != "" || a.SPN != "" || a.KDC != "" {
			return kind.BadRequest("--realm, --spn and --kdc are for --auth kerberos")
		}
	case "kerberos":
		switch {
		case a.Realm == "":
			return kind.BadRequest("--auth kerberos needs --realm (for example EXAMPLE.COM)")
		case !strings.HasPrefix(a.SPN, "MSSQLSvc/"):
			return kind.BadRequest("--spn: want the server's service principal, MSSQLSvc/HOST:PORT")
		case a.Domain != "":
			return kind.BadRequest("--domain is for --auth ntlm; Kerberos uses --realm")
		}
		a.Realm = strings.ToUpper(a.Realm)
		if a.KDC != "" {
			if _, _, err := net.SplitHostPort(a.KDC); err != nil && strings.ContainsAny(a.KDC, "/ ") {
				return kind.BadRequest("--kdc: want HOST or HOST:PORT")
			}
		}
	default:
		return kind.BadRequest("--auth: want sql, ntlm, kerberos or pkinit for SQL Server accounts")
	}
	return nil
}

func (k *Kind) View(res *store.Resource, v *api.Resource) {
	p := stored(res.Options)
	v.Address = net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
	tls := fmt.Sprint(p.TLS.Enabled)
	if p.Strict {
		tls = "strict (TDS 8.0)"
	}
	if !p.TLS.Verify {
		tls += " (not verified)"
	}
	db := p.Database
	if db == "" {
		db = "(the login's default)"
	}
	v.Details = []api.Detail{{Label: "Database", Value: db}, {Label: "TLS", Value: tls}}
}

func (k *Kind) Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, _ *store.Session) error {
	p := stored(res.Options)
	cert, key, err := k.env.ResourceCertificate(res)
	d.MSSQL = &tunnel.MSSQLTarget{
		Login: kind.Common(acct), Auth: acct.Auth, Database: p.Database,
		Domain: acct.Domain, Realm: acct.Realm, SPN: acct.SPN, KDC: acct.KDC,
		UPN: acct.UPN, SID: acct.SID, KDCCA: acct.KDCCA, KDCHostname: acct.KDCHostname, Keytab: acct.Keytab,
		TargetTLS: p.TLS.Target(), TLSStrict: p.Strict, ServerTLSCert: cert, ServerTLSKey: key,
	}
	return err
}

// Grant gives SQL clients the resource CA (never the server CA) and the
// lines for sqlcmd, tsql and GUI clients.
func (k *Kind) Grant(res *store.Resource, _ *store.Account, g *api.SessionGrant) error {
	database := stored(res.Options).Database
	g.TLSCA, g.Database = k.env.ResourceCA(), database
	db, tsqlDB, shown := "", "", "(the login's default)"
	if database != "" {
		db, tsqlDB, shown = " -d "+database, " -D "+database, database
	}
	g.ClientLines = []string{
		"sqlcmd -S 127.0.0.1,{port}" + db,
		"tsql -H 127.0.0.1 -p {port}" + tsqlDB + " -U pamd -P \"\"",
		"pamd: GUI clients (SSMS, Azure Data Studio, DBeaver): server 127.0.0.1, port {port}, database " + shown + ", SQL Server authentication, any user name; leave the password empty",
		"pamd: clients that require encryption (ODBC Driver 18, sqlcmd -N) see a certificate signed by pamd's resource CA: trust it with sqlcmd -C or TrustServerCertificate=yes, or add {tls_ca_file} to the client's trusted CAs",
	}
	g.ClientFields = map[string]string{"database": database, "tls_ca_file": "{tls_ca_file}"}
	sqlcmd, tsql := []string{"sqlcmd", "-S", "127.0.0.1,{port}"}, []string{"tsql", "-H", "127.0.0.1", "-p", "{port}", "-U", "pamd", "-P", ""}
	if database != "" {
		sqlcmd, tsql = append(sqlcmd, "-d", database), append(tsql, "-D", database)
	}
	g.ClientCommands = [][]string{sqlcmd, tsql}
	g.Refusal = api.RefusalTDS
	return nil
}

func (k *Kind) Rotation(a *store.Account) (kind.Rotation, string) {
	if a.Auth == "" || a.Auth == "sql" {
		return kind.RotatePassword, ""
	}
	return kind.RotateNone, "account " + a.Name + " is a Windows domain account (" + a.Auth + "): its password is the domain's to change, and pamd rotates SQL logins only"
}

// Test reaches the server through the gateway (PRELOGIN, and TLS as the
// resource sets it), then logs in with each account, and reports each.
func (k *Kind) Test(ctx context.Context, res *store.Resource, accts []*store.Account) ([]api.ResourceCheck, error) {
	var out []api.ResourceCheck
	add := func(name, detail string, err error) {
		if err != nil {
			detail = err.Error()
		}
		out = append(out, api.ResourceCheck{Check: name, OK: err == nil, Detail: detail})
	}
	address := net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
	v, err := k.probe(ctx, res, nil)
	add("reach "+address, v, err)
	for _, a := range accts {
		if a.Auth == "pkinit" {
			// Its certificate is signed for a live session only (the
			// gateway asks for one per session): nothing to log in with here.
			add("log in as account "+a.Name, "not tried: a pkinit account logs in with a certificate pamd signs for a live session; open one with pamd connect", nil)
			continue
		}
		v, err := k.probe(ctx, res, a)
		add("log in as account "+a.Name, "logged in as "+a.Username+" ("+a.Auth+"), "+v, err)
	}
	return out, nil
}

// probe has the gateway reach the server (and, given an account, log in)
// and returns what the gateway saw of it.
func (k *Kind) probe(ctx context.Context, res *store.Resource, acct *store.Account) (string, error) {
	d := tunnel.Descriptor{Protocol: tunnel.ProtocolMSSQL, Resource: res.Name, Target: net.JoinHostPort(res.Host, strconv.Itoa(res.Port))}
	if acct == nil {
		acct = &store.Account{}
	} else {
		d.Account = acct.Name
	}
	if err := k.Descriptor(&d, res, acct, nil); err != nil {
		return "", err
	}
	r, err := k.env.Probe(ctx, res, d)
	if err != nil && d.Account != "" && strings.Contains(err.Error(), "no probe for protocol") {
		return "", fmt.Errorf("%s is too old to log in for a check (upgrade it)", kind.Via(res))
	}
	if err != nil {
		return "", err
	}
	return r.Version, nil
}

func (k *Kind) Summary(r *tunnel.Record) string {
	switch r.Type {
	case "sql", "rpc", "attention":
		return fmt.Sprintf("[%s] %s  %s  %.1f ms%s", r.Database, sqlSummary(r), sqlOutcome(r), r.DurationMS, kind.TruncatedNote(r))
	}
	return kind.CommonSummary(r)
}

// sqlSummary is a request as one line: the batch text, or the procedure
// with its parameters.
func sqlSummary(r *tunnel.Record) string {
	text := strings.Join(strings.Fields(r.Command), " ")
	if r.Type == "rpc" {
		text = "EXEC " + text + " " + r.Data
	}
	return kind.HeadTail(text, 200)
}

func sqlOutcome(r *tunnel.Record) string {
	if r.Status != nil && *r.Status == 0 {
		if r.Code != 0 {
			return fmt.Sprintf("error %d: %s", r.Code, r.Error)
		}
		return "failed: " + r.Error
	}
	out := fmt.Sprintf("%d rows", r.Rows)
	if r.Affected > 0 {
		out += fmt.Sprintf(", %d affected", r.Affected)
	}
	return out
}

func (k *Kind) FailureAction(tunnel.Reason) string { return "" }
