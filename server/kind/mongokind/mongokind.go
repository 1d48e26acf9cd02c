package mongokind

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// DefaultPort is the port of a resource that names none.
const DefaultPort = 27017

// Kind is the mongodb kind.
type Kind struct{ env kind.Env }

// New returns the mongodb kind.
func New(env kind.Env) *Kind { return &Kind{env: env} }

// options are a mongodb resource's settings, parsed from the stored map.
type options struct {
	URI           string // uri
	AuthDatabase  string // auth_database
	TLS           kind.TLS
	ServerVersion string // server_version
}

func stored(o map[string]string) options {
	return options{URI: o["uri"], AuthDatabase: o["auth_database"], TLS: kind.StoredTLS(o), ServerVersion: o["server_version"]}
}

// parse checks and normalises a resource's options; it returns warnings
// for the admin, and the URL of the connection string.
func parse(o map[string]string) (options, *url.URL, []string, error) {
	var p options
	raw := strings.TrimSpace(o["uri"])
	if raw == "" {
		return p, nil, nil, kind.BadRequest("--connection-string: a mongodb:// or mongodb+srv:// URI is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") || u.Host == "" {
		return p, nil, nil, kind.BadRequest("--connection-string: want mongodb://HOST[:PORT][,HOST...] or mongodb+srv://HOST")
	}
	if u.User != nil {
		return p, nil, nil, kind.BadRequest("--connection-string must not carry credentials: they belong in an account (pamd accounts add), where they are sealed and never shown")
	}
	if strings.Trim(u.Path, "/") != "" {
		return p, nil, nil, kind.BadRequest("--connection-string must not name a database: clients choose theirs; accounts authenticate against --auth-database")
	}
	q := u.Query()
	for _, k := range []string{"authSource", "authMechanism", "username", "password"} {
		if q.Has(k) {
			return p, nil, nil, kind.BadRequest("--connection-string: %s belongs in the resource's --auth-database and its accounts", k)
		}
	}
	p.URI, p.AuthDatabase, p.ServerVersion = raw, o["auth_database"], o["server_version"]
	if p.AuthDatabase == "" {
		p.AuthDatabase = "admin"
	}
	var warnings []string
	if p.TLS, warnings, err = kind.ParseTLS(o, "the MongoDB server"); err != nil {
		return p, nil, nil, err
	}
	return p, u, warnings, nil
}

// put stores the settings on res, keeping its other options (the password
// policy), and takes the address from the connection string.
func (p options) put(res *store.Resource, o map[string]string, u *url.URL) {
	o["uri"], o["auth_database"] = p.URI, p.AuthDatabase
	p.TLS.Put(o)
	if p.ServerVersion != "" {
		o["server_version"] = p.ServerVersion
	}
	res.Options = o
	res.Host = u.Host
	res.Port = 0
	if port := u.Port(); port != "" && !strings.Contains(u.Host, ",") {
		res.Port, _ = strconv.Atoi(port)
		res.Host = u.Hostname()
	}
}

func (k *Kind) Schema() api.Kind {
	return api.Kind{
		Name: tunnel.ProtocolMongo, Label: "MongoDB",
		ResourceFields: append([]api.Field{
			{Name: "uri", Label: "Connection string", Type: api.FieldText, Option: true, Flag: "connection-string", Required: true, Placeholder: "mongodb://db1:27017/?replicaSet=rs0", Edit: true,
				Help: "mongodb:// or mongodb+srv://, without credentials or database"},
			{Name: "auth_database", Label: "Auth database", Type: api.FieldText, Option: true, Default: "admin", Edit: true},
		}, kind.TLSFields()...),
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
	if req.Host == "" {
		req.Host = "-" // from the connection string (Create)
	}
}

func (k *Kind) Create(ctx context.Context, res *store.Resource, opts map[string]string, out *kind.Outcome) error {
	o := map[string]string{}
	for key, v := range opts {
		o[key] = v
	}
	p, u, warnings, err := parse(o)
	if err != nil {
		return err
	}
	p.put(res, o, u)
	version, err := k.probe(ctx, res, nil)
	if err != nil {
		return kind.Errorf(http.StatusBadGateway, "%s cannot use %s: %v", kind.Via(res), p.URI, err)
	}
	res.Options["server_version"] = version
	out.Warnings = warnings
	out.Detail = "mongodb " + p.URI + " via " + kind.Via(res) + ", server " + version
	if len(warnings) > 0 {
		out.Detail += "; " + strings.Join(warnings, "; ")
	}
	return nil
}

func (k *Kind) Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, moved bool, out *kind.Outcome) error {
	if u.Host != nil || u.Port != nil {
		return kind.BadRequest("a mongodb resource's address is its connection string (options.uri)")
	}
	if len(u.Options) == 0 && !moved {
		return nil
	}
	merged := kind.MergeOptions(res.Options, u.Options, &out.Changed)
	p, url, warnings, err := parse(merged)
	if err != nil {
		return err
	}
	p.put(res, merged, url)
	out.Warnings = warnings
	version, err := k.probe(ctx, res, nil)
	if err != nil {
		return kind.Errorf(http.StatusBadGateway, "%s cannot use %s: %v", kind.Via(res), p.URI, err)
	}
	res.Options["server_version"] = version
	return nil
}

// CheckAccount checks a new account's settings, then (new or updated, unless
// the admin said --no-login-check) that it logs in, refusing it with the
// server's reason.
func (k *Kind) CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error {
	if !update {
		if a.Username == "" || a.Password == "" {
			return kind.BadRequest("a MongoDB account needs --username and --password-stdin")
		}
		if a.Auth != "" || a.PrivateKey != "" {
			return kind.BadRequest("MongoDB accounts log in with SCRAM: --username and --password-stdin only")
		}
	}
	if !kind.LoginCheck(ctx) {
		return nil
	}
	if _, err := k.probe(ctx, res, a); err != nil {
		return kind.LoginFailed(a, res, err)
	}
	return nil
}

func (k *Kind) View(res *store.Resource, v *api.Resource) {
	p := stored(res.Options)
	v.Address, v.Version = p.URI, p.ServerVersion
	tls := fmt.Sprint(p.TLS.Enabled)
	if !p.TLS.Verify {
		tls += " (not verified)"
	}
	version := p.ServerVersion
	if version == "" {
		version = "–"
	}
	v.Details = []api.Detail{{Label: "Auth database", Value: p.AuthDatabase}, {Label: "TLS", Value: tls}, {Label: "Server version", Value: version}}
}

func (k *Kind) part(res *store.Resource) *tunnel.MongoTarget {
	p := stored(res.Options)
	return &tunnel.MongoTarget{URI: p.URI, AuthDatabase: p.AuthDatabase, TargetTLS: p.TLS.Target()}
}

func (k *Kind) Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, _ *store.Session) error {
	d.Mongo = k.part(res)
	d.Mongo.Login = kind.Common(acct)
	return nil
}

// probe checks the server is reachable (and, given an account, that its
// credential works) and returns the server's version.
func (k *Kind) probe(ctx context.Context, res *store.Resource, acct *store.Account) (string, error) {
	d := tunnel.Descriptor{Protocol: tunnel.ProtocolMongo, Resource: res.Name, Mongo: k.part(res)}
	if acct != nil {
		d.Account = acct.Name
		d.Mongo.Login = kind.Common(acct)
	}
	r, err := k.env.Probe(ctx, res, d)
	if err != nil {
		return "", err
	}
	return r.Version, nil
}

func (k *Kind) Grant(_ *store.Resource, _ *store.Account, g *api.SessionGrant) error {
	const uri = "mongodb://127.0.0.1:{port}/test?directConnection=true"
	g.ClientLines = []string{
		"mongosh \"" + uri + "\"",
		"pamd: drivers and GUI clients: " + uri + " (no user name or password; any database)",
	}
	g.ClientFields = map[string]string{"uri": uri}
	g.ClientCommands = [][]string{{"mongosh", uri}}
	return nil
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
	v, err := k.probe(ctx, res, nil)
	add("reach "+res.Options["uri"], "server version "+v, err)
	for _, a := range accts {
		_, err := k.probe(ctx, res, a)
		add("log in as account "+a.Name, "authenticated as "+a.Username, err)
	}
	return out, nil
}

func (k *Kind) Summary(r *tunnel.Record) string {
	if r.Type != "command" {
		return kind.CommonSummary(r)
	}
	ns := r.Database
	if r.Collection != "" {
		ns += "." + r.Collection
	}
	result := fmt.Sprintf("ok, %d docs", r.Docs)
	if r.Status != nil && *r.Status == 0 {
		result = fmt.Sprintf("error %d: %s", r.Code, r.Error)
	}
	return fmt.Sprintf("%s %s  %s  %.1f ms  %s%s", r.Command, ns, result, r.DurationMS, kind.HeadTail(r.Data, 160), kind.TruncatedNote(r))
}

func (k *Kind) FailureAction(tunnel.Reason) string { return "" }
