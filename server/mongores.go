package server

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// MongoDB resources are described by a connection string without
// credentials; the settings live in the resource's options:
//
//	uri                      mongodb:// or mongodb+srv://, no user, no database
//	auth_database            where the accounts authenticate (default admin)
//	tls                      "true" (default) or "false"
//	tls_reject_unauthorized  "true" (default) or "false"
//	tls_ca                   a CA certificate (PEM) to verify the server with
//	server_version           what the server reported when last probed

// validateMongoResource checks and normalises a mongodb resource request
// and returns warnings for the person creating it.
func validateMongoResource(res *store.Resource, req *api.Resource) ([]string, error) {
	o := map[string]string{}
	for k, v := range req.Options {
		o[k] = v
	}
	raw := strings.TrimSpace(o["uri"])
	if raw == "" {
		return nil, httpError(http.StatusBadRequest, "--connection-string: a mongodb:// or mongodb+srv:// URI is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") || u.Host == "" {
		return nil, httpError(http.StatusBadRequest, "--connection-string: want mongodb://HOST[:PORT][,HOST...] or mongodb+srv://HOST")
	}
	if u.User != nil {
		return nil, httpError(http.StatusBadRequest, "--connection-string must not carry credentials: they belong in an account (pamd accounts add), where they are sealed and never shown")
	}
	if strings.Trim(u.Path, "/") != "" {
		return nil, httpError(http.StatusBadRequest, "--connection-string must not name a database: clients choose theirs; accounts authenticate against --auth-database")
	}
	q := u.Query()
	for _, k := range []string{"authSource", "authMechanism", "username", "password"} {
		if q.Has(k) {
			return nil, httpError(http.StatusBadRequest, "--connection-string: %s belongs in the resource's --auth-database and its accounts", k)
		}
	}
	if o["auth_database"] == "" {
		o["auth_database"] = "admin"
	}
	warnings, err := tlsOptions(o, "the MongoDB server")
	if err != nil {
		return nil, err
	}
	o["uri"] = raw
	res.Options = o
	res.Host = u.Host
	res.Port = 0
	if p := u.Port(); p != "" && !strings.Contains(u.Host, ",") {
		res.Port, _ = strconv.Atoi(p)
		res.Host = u.Hostname()
	}
	return warnings, nil
}

// tlsOptions defaults and checks the TLS options database resources share
// and returns warnings about weakened settings.
func tlsOptions(o map[string]string, server string) ([]string, error) {
	for _, k := range []string{"tls", "tls_reject_unauthorized"} {
		switch o[k] {
		case "":
			o[k] = "true"
		case "true", "false":
		default:
			return nil, httpError(http.StatusBadRequest, "--%s: want true or false", strings.ReplaceAll(k, "_", "-"))
		}
	}
	if ca := o["tls_ca"]; ca != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(ca)) {
		return nil, httpError(http.StatusBadRequest, "--tls-ca-file: no PEM certificate in it")
	}
	switch {
	case o["tls"] == "false":
		return []string{"TLS to " + server + " is off: credentials and data cross the private network in the clear"}, nil
	case o["tls_reject_unauthorized"] == "false":
		return []string{"TLS certificate verification is off: the gateway cannot tell the real server from an impostor"}, nil
	}
	return nil, nil
}

func mongoDescriptor(d *tunnel.Descriptor, res *store.Resource) {
	o := res.Options
	d.URI, d.AuthDatabase = o["uri"], o["auth_database"]
	d.TLS = o["tls"] != "false"
	d.TLSRejectUnauthorized = o["tls_reject_unauthorized"] != "false"
	d.TLSCA = o["tls_ca"]
}

// probeMongo checks the server is reachable (and, given an account, that
// its credential works) and returns the server's version.
func (s *Server) probeMongo(res *store.Resource, acct *store.Account) (string, error) {
	d := tunnel.Descriptor{Protocol: "mongodb", Resource: res.Name}
	mongoDescriptor(&d, res)
	if acct != nil {
		d.Account, d.Username, d.Password = acct.Name, acct.Username, acct.Password
	}
	r, err := s.probe(res.Gateway, d)
	if err != nil {
		return "", err
	}
	return r.Version, nil
}

// handleTestResource checks, through the gateway, that a resource can be
// reached and each account can log in (where pamd can tell).
func (s *Server) handleTestResource(w http.ResponseWriter, r *http.Request) error {
	var res *store.Resource
	var accts []*store.Account
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.ResourceByName(r.PathValue("name")); err != nil {
			return err
		}
		accts, err = tx.Accounts(res.ID)
		return err
	})
	if err != nil {
		return err
	}
	type check struct {
		Check  string `json:"check"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	}
	var out []check
	add := func(name string, detail string, err error) {
		if err != nil {
			out = append(out, check{name, false, err.Error()})
		} else {
			out = append(out, check{name, true, detail})
		}
	}
	switch res.Type {
	case "mongodb":
		v, err := s.probeMongo(res, nil)
		add("reach "+res.Options["uri"], "server version "+v, err)
		for _, a := range accts {
			_, err := s.probeMongo(res, a)
			add("log in as account "+a.Name, "authenticated as "+a.Username, err)
		}
	case "ssh":
		key, err := s.probeHostKey(res.Gateway, res.Host, res.Port)
		if err == nil {
			if fp := hostKeyFingerprint(res); fp != sshFingerprint(key) {
				err = httpError(http.StatusConflict, "host key mismatch: pinned %s, the target presents %s", fp, sshFingerprint(key))
			}
		}
		add("reach and match the pinned host key", "host key "+hostKeyFingerprint(res), err)
	default:
		return httpError(http.StatusBadRequest, "pamd has no test for %s resources", res.Type)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
