package server

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// resourceTypes lists the types this build proxies, with their default ports.
var resourceTypes = map[string]int{"tcp": 0, "ssh": 22, "mongodb": 27017, "mssql": 1433}

func resourceView(r *store.Resource) api.Resource {
	opts := map[string]string{}
	for k, v := range r.Options {
		if k != "tls_ca" { // not secret, but long: shown as present
			opts[k] = v
		} else {
			opts[k] = "(set)"
		}
	}
	v := api.Resource{ID: r.ID, Name: r.Name, Type: r.Type, Gateway: r.Gateway, Host: r.Host, Port: r.Port, Options: opts, CreatedAt: r.CreatedAt}
	if r.Type == "ssh" {
		v.HostKeyFingerprint = hostKeyFingerprint(r)
	}
	return v
}

func accountView(res string, a *store.Account) api.Account {
	return api.Account{Resource: res, Name: a.Name, Username: a.Username, Description: a.Description,
		RequireMFA: a.RequireMFA, HasPassword: a.Password != "", HasKey: a.PrivateKey != "", Auth: a.Auth, CreatedAt: a.CreatedAt,
		Domain: a.Domain, Realm: a.Realm, SPN: a.SPN, KDC: a.KDC, Rotation: rotationView(&a.Rotation)}
}

func (s *Server) handleListResources(w http.ResponseWriter, r *http.Request) error {
	var out []api.Resource
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Resources()
		for _, res := range all {
			out = append(out, resourceView(res))
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleGetResource(w http.ResponseWriter, r *http.Request) error {
	var out api.Resource
	err := s.st.View(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		out = resourceView(res)
		accts, err := tx.Accounts(res.ID)
		for _, a := range accts {
			out.Accounts = append(out.Accounts, accountView(res.Name, a))
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateResource(w http.ResponseWriter, r *http.Request) error {
	var req api.Resource
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("resource", req.Name); err != nil {
		return err
	}
	defPort, ok := resourceTypes[req.Type]
	if !ok {
		return httpError(http.StatusBadRequest, "resource type %q is not supported by this pamd (supported: tcp, ssh, mongodb, mssql)", req.Type)
	}
	if req.Port == 0 {
		req.Port = defPort
	}
	if req.Type == "mongodb" && req.Host == "" {
		req.Host = "-" // from the connection string, below
	}
	switch {
	case req.Host == "" || strings.ContainsAny(req.Host, " /"):
		return httpError(http.StatusBadRequest, "--host: give the target's host name or IP address as the gateway sees it")
	case req.Port < 1 || req.Port > 65535:
		return httpError(http.StatusBadRequest, "--port: want 1 to 65535")
	case req.Gateway == "":
		return httpError(http.StatusBadRequest, "--gateway: name the gateway that reaches this resource (see pamd gateways list)")
	}
	c := callerOf(r)
	res := &store.Resource{ID: store.NewID(), Name: req.Name, Type: req.Type, Gateway: req.Gateway, Host: req.Host, Port: req.Port, CreatedAt: time.Now().UTC()}
	if err := s.st.View(func(tx *store.Tx) error {
		if _, err := tx.GatewayByName(req.Gateway); err != nil {
			return httpError(http.StatusBadRequest, "no gateway named %q (see pamd gateways list)", req.Gateway)
		}
		if _, err := tx.ResourceByName(req.Name); err == nil {
			return httpError(http.StatusConflict, "resource %q already exists", req.Name)
		}
		return nil
	}); err != nil {
		return err
	}
	detail := res.Type + " " + res.Host + ":" + strconv.Itoa(res.Port) + " via " + res.Gateway
	var warnings []string
	policy := takePolicy(req.Options)
	if res.Type == "mongodb" {
		var err error
		if warnings, err = validateMongoResource(res, &req); err != nil {
			return err
		}
		version, err := s.probeMongo(res, nil)
		if err != nil {
			return httpError(http.StatusBadGateway, "gateway %s cannot use %s: %v", res.Gateway, res.Options["uri"], err)
		}
		res.Options["server_version"] = version
		detail = "mongodb " + res.Options["uri"] + " via " + res.Gateway + ", server " + version
		if len(warnings) > 0 {
			detail += "; " + strings.Join(warnings, "; ")
		}
	}
	if res.Type == "mssql" {
		var err error
		if warnings, err = validateMSSQLResource(res, &req); err != nil {
			return err
		}
		if _, _, err := s.mssqlCertificate(res); err != nil {
			return err
		}
		if db := res.Options["database"]; db != "" {
			detail += ", database " + db
		}
		if len(warnings) > 0 {
			detail += "; " + strings.Join(warnings, "; ")
		}
	}
	if res.Type == "ssh" {
		if _, err := s.pinHostKey(res); err != nil {
			return err
		}
		if _, _, err := s.sshHostKey(res.ID); err != nil {
			return err
		}
		detail += "; pinned host key " + hostKeyFingerprint(res)
	}
	var policyNotes []string
	if err := setPolicy(res, policy, &policyNotes); err != nil {
		return err
	}
	if len(policyNotes) > 0 {
		detail += "; " + strings.Join(policyNotes, ", ")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "resource.create", res.Name, "success", c.source, detail)
	})
	if err != nil {
		return err
	}
	v := resourceView(res)
	v.Warnings = warnings
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) handleDeleteResource(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	name := r.PathValue("name")
	err := s.st.Update(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(name)
		if err != nil {
			return err
		}
		if err := tx.DeleteResource(res); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "resource.delete", name, "success", c.source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *Server) handleListAccounts(w http.ResponseWriter, r *http.Request) error {
	out := []api.Account{}
	err := s.st.View(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		accts, err := tx.Accounts(res.ID)
		for _, a := range accts {
			out = append(out, accountView(res.Name, a))
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateAccount(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateAccountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("account", req.Name); err != nil {
		return err
	}
	c := callerOf(r)
	a := &store.Account{ID: store.NewID(), Name: req.Name, Username: req.Username, Password: req.Password,
		Auth: req.Auth, PrivateKey: req.PrivateKey, Passphrase: req.Passphrase,
		Domain: req.Domain, Realm: req.Realm, SPN: req.SPN, KDC: req.KDC,
		Description: req.Description, RequireMFA: req.RequireMFA, CreatedAt: time.Now().UTC()}
	var target *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { target, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	if target.Type == "mongodb" && a.Username != "" && a.Password != "" {
		// Checked before it is stored, outside the store's write lock.
		if _, err := s.probeMongo(target, a); err != nil {
			return httpError(http.StatusBadRequest, "account %s cannot log in: %v", a.Name, err)
		}
	}
	var resName string
	err := s.st.Update(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		switch res.Type {
		case "ssh":
			if err := validateSSHAccount(a); err != nil {
				return err
			}
		case "mongodb":
			if a.Username == "" || a.Password == "" {
				return httpError(http.StatusBadRequest, "a MongoDB account needs --username and --password-stdin")
			}
			if a.Auth != "" || a.PrivateKey != "" {
				return httpError(http.StatusBadRequest, "MongoDB accounts log in with SCRAM: --username and --password-stdin only")
			}
		case "mssql":
			if err := validateMSSQLAccount(a); err != nil {
				return err
			}
		default:
			if a.Auth != "" || a.PrivateKey != "" {
				return httpError(http.StatusBadRequest, "--auth and keys are for ssh and mssql resources; %s is %s", res.Name, res.Type)
			}
		}
		a.ResourceID, resName = res.ID, res.Name
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		detail := "username " + a.Username
		if a.Auth != "" {
			detail += ", " + a.Auth + " auth"
		}
		if a.RequireMFA {
			detail += ", MFA required"
		}
		return appendAudit(tx, c.user.Name, "account.create", res.Name+"/"+a.Name, "success", c.source, detail)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, accountView(resName, a))
	return nil
}

func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	target := r.PathValue("name") + "/" + r.PathValue("account")
	err := s.st.Update(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		a, err := tx.AccountByName(res.ID, r.PathValue("account"))
		if err != nil {
			return err
		}
		if err := tx.DeleteAccount(a); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "account.delete", target, "success", c.source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	out := []api.CatalogEntry{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Resources()
		if err != nil {
			return err
		}
		for _, res := range all {
			accts, err := tx.Accounts(res.ID)
			if err != nil {
				return err
			}
			for _, a := range accts {
				g, ok := grantFor(c.roles, res.Name, a.Name)
				if !ok {
					continue
				}
				out = append(out, api.CatalogEntry{Resource: res.Name, Type: res.Type, Account: a.Name, Username: a.Username,
					Gateway: res.Gateway, GatewayOnline: s.hub.online(res.Gateway), RequireMFA: a.RequireMFA,
					RequireReason: g.requireReason, MaxDuration: g.maxDuration.String()})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Resource+"/"+out[i].Account < out[j].Resource+"/"+out[j].Account
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}
