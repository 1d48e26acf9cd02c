package postgreskind

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// DefaultPort is the port of a resource that names none.
const DefaultPort = 5432

// Kind is the postgres kind.
type Kind struct{ env kind.Env }

// New returns the postgres kind.
func New(env kind.Env) *Kind { return &Kind{env: env} }

// options are a postgres resource's settings, parsed from the stored map.
type options struct {
	Database string // database
	TLS      kind.TLS
}

func stored(o map[string]string) options {
	return options{Database: o["database"], TLS: kind.StoredTLS(o)}
}

// parse checks a resource's options and stores them normalised in o.
func parse(o map[string]string) ([]string, error) {
	db := strings.TrimSpace(o["database"])
	if db == "" || strings.ContainsRune(db, 0) {
		return nil, kind.BadRequest("--database: name the database the gateway logs in to")
	}
	o["database"] = db
	t, warnings, err := kind.ParseTLS(o, "the PostgreSQL server")
	if err != nil {
		return nil, err
	}
	t.Put(o)
	return warnings, nil
}

func (k *Kind) Schema() api.Kind {
	return api.Kind{
		Name: tunnel.ProtocolPostgres, Label: "PostgreSQL",
		ResourceFields: append(append(kind.AddressFields(DefaultPort),
			api.Field{Name: "database", Label: "Database", Type: api.FieldText, Option: true, Required: true, Placeholder: "where clients land", Edit: true}),
			kind.TLSFields()...),
		AccountFields: []api.Field{
			{Name: "username", Label: "User name", Type: api.FieldText, Required: true, Edit: true},
			{Name: "password", Label: "Password", Type: api.FieldSecret, Required: true, Edit: true, Keep: true},
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
	if _, err := k.probe(ctx, res, nil); err != nil {
		return kind.Errorf(http.StatusBadGateway, "%s cannot use %s: %v", kind.Via(res), address(res), err)
	}
	out.Detail += ", database " + o["database"]
	out.Warnings = warnings
	if len(warnings) > 0 {
		out.Detail += "; " + strings.Join(warnings, "; ")
	}
	return nil
}

func (k *Kind) Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, moved bool, out *kind.Outcome) error {
	changed := moved
	if len(u.Options) > 0 {
		merged := kind.MergeOptions(res.Options, u.Options, &out.Changed)
		warnings, err := parse(merged)
		if err != nil {
			return err
		}
		res.Options, out.Warnings = merged, warnings
		changed = true
	}
	m, err := kind.UpdateAddress(res, u, out)
	if err != nil {
		return err
	}
	if changed || m {
		if _, err := k.probe(ctx, res, nil); err != nil {
			return kind.Errorf(http.StatusBadGateway, "%s cannot use %s: %v", kind.Via(res), address(res), err)
		}
	}
	return nil
}

// CheckAccount checks an account's settings, then that it logs in.
func (k *Kind) CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error {
	if a.Username == "" || a.Password == "" {
		return kind.BadRequest("a PostgreSQL account needs --username and --password-stdin")
	}
	if a.Auth != "" || a.PrivateKey != "" || a.Domain != "" || a.Realm != "" || a.SPN != "" || a.KDC != "" {
		return kind.BadRequest("PostgreSQL accounts log in with a password: --username and --password-stdin only")
	}
	if strings.ContainsRune(a.Username, 0) || strings.ContainsRune(a.Password, 0) {
		return kind.BadRequest("a PostgreSQL user name or password cannot hold a NUL byte")
	}
	if !kind.LoginCheck(ctx) {
		return nil
	}
	if _, err := k.probe(ctx, res, a); err != nil {
		return kind.LoginFailed(a, res, err)
	}
	return nil
}

func address(res *store.Resource) string {
	return net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
}

func (k *Kind) View(res *store.Resource, v *api.Resource) {
	p := stored(res.Options)
	v.Address = address(res)
	tls := fmt.Sprint(p.TLS.Enabled)
	if p.TLS.Enabled && !p.TLS.Verify {
		tls += " (not verified)"
	}
	v.Details = []api.Detail{{Label: "Database", Value: p.Database}, {Label: "TLS", Value: tls}}
}

func (k *Kind) part(res *store.Resource) *tunnel.PostgresTarget {
	p := stored(res.Options)
	return &tunnel.PostgresTarget{Database: p.Database, TargetTLS: p.TLS.Target()}
}

func (k *Kind) Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, _ *store.Session) error {
	d.Postgres = k.part(res)
	d.Postgres.Login = kind.Common(acct)
	cert, key, err := k.env.ResourceCertificate(res)
	d.Postgres.ServerTLSCert, d.Postgres.ServerTLSKey = cert, key
	return err
}

// probe reaches the server through the gateway, with its TLS (and, given
// an account, logs in), and returns the server's version (known only
// after a login: pamd resources test shows it).
func (k *Kind) probe(ctx context.Context, res *store.Resource, acct *store.Account) (string, error) {
	d := tunnel.Descriptor{Protocol: tunnel.ProtocolPostgres, Resource: res.Name, Target: address(res), Postgres: k.part(res)}
	if acct != nil {
		d.Account = acct.Name
		d.Postgres.Login = kind.Common(acct)
	}
	r, err := k.env.Probe(ctx, res, d)
	if err != nil {
		return "", err
	}
	return r.Version, nil
}

// Grant gives clients the resource CA (never the server CA) and the lines
// for psql, JDBC and GUI clients.
func (k *Kind) Grant(res *store.Resource, _ *store.Account, g *api.SessionGrant) error {
	db := stored(res.Options).Database
	g.TLSCA, g.Database = k.env.ResourceCA(), db
	conninfo := "host=127.0.0.1 port={port} dbname=" + conninfoValue(db) + " user=pamd"
	jdbc := "jdbc:postgresql://127.0.0.1:{port}/" + db + "?sslmode=disable"
	g.ClientLines = []string{
		`psql "` + conninfo + ` sslmode=disable"`,
		`psql "` + conninfo + ` sslmode=verify-full sslrootcert={tls_ca_file}"`,
		"pamd: JDBC (DBeaver, DataGrip): " + jdbc,
		"pamd: GUI clients (pgAdmin): host 127.0.0.1, port {port}, database " + db + ", any user name; leave the password empty",
	}
	g.ClientFields = map[string]string{"database": db, "tls_ca_file": "{tls_ca_file}", "jdbc_url": jdbc,
		"dsn": conninfo + " sslmode=disable"}
	g.Refusal = api.RefusalPostgres
	return nil
}

// conninfoValue quotes a value for a libpq connection string when needed.
func conninfoValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (k *Kind) Rotation(*store.Account) (kind.Rotation, string) { return kind.RotatePassword, "" }

func (k *Kind) Test(ctx context.Context, res *store.Resource, accts []*store.Account) ([]api.ResourceCheck, error) {
	var out []api.ResourceCheck
	add := func(name, detail string, err error) {
		if err != nil {
			detail = err.Error()
		}
		out = append(out, api.ResourceCheck{Check: name, OK: err == nil, Detail: detail})
	}
	tls := "TLS off"
	if t := stored(res.Options).TLS; t.Enabled && t.Verify {
		tls = "TLS verified"
	} else if t.Enabled {
		tls = "TLS, not verified"
	}
	_, err := k.probe(ctx, res, nil)
	add("reach "+address(res), tls, err)
	for _, a := range accts {
		v, err := k.probe(ctx, res, a)
		add("log in as account "+a.Name, "authenticated as "+a.Username+", server version "+v, err)
	}
	return out, nil
}

func (k *Kind) Summary(r *tunnel.Record) string {
	switch r.Type {
	case "query", "execute", "copy":
	default:
		return kind.CommonSummary(r)
	}
	text := kind.HeadTail(strings.Join(strings.Fields(r.Command), " "), 200)
	if r.Data != "" {
		text += "  (" + kind.HeadTail(r.Data, 160) + ")"
	}
	outcome := r.Op
	if r.Status != nil && *r.Status == 0 {
		outcome = "error " + r.Error
	} else if outcome == "" {
		outcome = "ok"
	}
	if r.Type == "copy" {
		outcome = fmt.Sprintf("copy %s %d bytes, %s", r.Path, r.Size, outcome)
	}
	return fmt.Sprintf("[%s] %s  %s  %.1f ms%s", r.Database, text, outcome, r.DurationMS, kind.TruncatedNote(r))
}

func (k *Kind) FailureAction(tunnel.Reason) string { return "" }
