package httpapi

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/rotation"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

func (s *API) resourceView(r *store.Resource) api.Resource {
	opts := map[string]string{}
	for k, v := range r.Options {
		if k != "tls_ca" { // not secret, but long: shown as present
			opts[k] = v
		} else {
			opts[k] = "(set)"
		}
	}
	v := api.Resource{ID: r.ID, Name: r.Name, Type: r.Type, Gateway: r.Gateway, GatewayGroup: r.GatewayGroup, Host: r.Host, Port: r.Port, Options: opts, CreatedAt: r.CreatedAt}
	if k, ok := s.kinds.Of(r.Type); ok {
		k.View(r, &v)
	}
	return v
}

func (s *API) accountView(res *store.Resource, a *store.Account) api.Account {
	v := api.Account{Resource: res.Name, Name: a.Name, Username: a.Username, Description: a.Description,
		RequireMFA: a.RequireMFA, HasPassword: a.Password != "", HasKey: a.PrivateKey != "", Auth: a.Auth, CreatedAt: a.CreatedAt,
		Domain: a.Domain, Realm: a.Realm, SPN: a.SPN, KDC: a.KDC, Rotation: rotation.View(&a.Rotation),
		UPN: a.UPN, SID: a.SID, KDCHostname: a.KDCHostname, HasKDCCA: a.KDCCA != "", HasKeytab: a.Keytab != ""}
	if k, ok := s.kinds.Of(res.Type); ok {
		how, _ := k.Rotation(a)
		v.Rotatable = how != kind.RotateNone
	}
	return v
}

func (s *API) handleListResources(w http.ResponseWriter, r *http.Request) error {
	out := []api.Resource{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Resources()
		for _, res := range all {
			out = append(out, s.resourceView(res))
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

func (s *API) handleGetResource(w http.ResponseWriter, r *http.Request) error {
	var out api.Resource
	err := s.st.View(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		out = s.resourceView(res)
		accts, err := tx.Accounts(res.ID)
		for _, a := range accts {
			out.Accounts = append(out.Accounts, s.accountView(res, a))
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCreateResource(w http.ResponseWriter, r *http.Request) error {
	var req api.Resource
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := api.ValidName("resource", req.Name); err != nil {
		return err
	}
	k, ok := s.kinds.Of(req.Type)
	if !ok {
		return s.kinds.Unsupported(req.Type)
	}
	k.Defaults(&req)
	if err := kind.CheckHost(req.Host); err != nil {
		return err
	}
	if err := kind.CheckPort(req.Port); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	res := &store.Resource{ID: store.NewID(), Name: req.Name, Type: req.Type, Gateway: req.Gateway, GatewayGroup: req.GatewayGroup,
		Host: req.Host, Port: req.Port, CreatedAt: time.Now().UTC()}
	if err := s.st.View(func(tx *store.Tx) error {
		if err := checkVia(tx, req.Gateway, req.GatewayGroup); err != nil {
			return err
		}
		if _, err := tx.ResourceByName(req.Name); err == nil {
			return api.Errorf(http.StatusConflict, "resource %q already exists", req.Name)
		}
		return nil
	}); err != nil {
		return err
	}
	out := &kind.Outcome{Detail: res.Type + " " + res.Host + ":" + strconv.Itoa(res.Port) + " via " + kind.Via(res)}
	policy := rotation.TakePolicy(req.Options)
	if err := k.Create(r.Context(), res, req.Options, out); err != nil {
		return err
	}
	detail, warnings := out.Detail, out.Warnings
	var policyNotes []string
	if err := rotation.SetPolicy(k, res, policy, &policyNotes); err != nil {
		return err
	}
	if len(policyNotes) > 0 {
		detail += "; " + strings.Join(policyNotes, ", ")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "resource.create", res.Name, "success", c.Source, detail)
	})
	if err != nil {
		return err
	}
	v := s.resourceView(res)
	v.Warnings = warnings
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *API) handleDeleteResource(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	err := s.st.Update(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(name)
		if err != nil {
			return err
		}
		if err := tx.DeleteResource(res); err != nil {
			return err
		}
		if err := s.ca.ForgetSSHRotation(tx, res.ID); err != nil { // a next SSH user CA key goes with it
			return err
		}
		return audit.Append(tx, c.User.Name, "resource.delete", name, "success", c.Source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *API) handleListAccounts(w http.ResponseWriter, r *http.Request) error {
	out := []api.Account{}
	err := s.st.View(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		accts, err := tx.Accounts(res.ID)
		for _, a := range accts {
			out = append(out, s.accountView(res, a))
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCreateAccount(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateAccountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := api.ValidName("account", req.Name); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	a := &store.Account{ID: store.NewID(), Name: req.Name, Username: req.Username, Password: req.Password,
		Auth: req.Auth, PrivateKey: req.PrivateKey, Passphrase: req.Passphrase,
		Domain: req.Domain, Realm: req.Realm, SPN: req.SPN, KDC: req.KDC,
		UPN: req.UPN, SID: req.SID, KDCCA: req.KDCCA, KDCHostname: req.KDCHostname, Keytab: req.Keytab,
		Description: req.Description, RequireMFA: req.RequireMFA, CreatedAt: time.Now().UTC()}
	var target *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { target, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	k, err := s.kinds.Must(target)
	if err != nil {
		return err
	}
	// Checked (where the kind can, by logging in) before it is stored,
	// outside the store's write lock.
	checkCtx, notes := kind.WithNotes(r.Context())
	if req.SkipLoginCheck {
		checkCtx = kind.WithoutLoginCheck(checkCtx)
	}
	if err := k.CheckAccount(checkCtx, target, a, false); err != nil {
		return err
	}
	var saved *store.Resource
	err = s.st.Update(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(r.PathValue("name"))
		if err != nil {
			return err
		}
		if res.ID != target.ID {
			return api.Errorf(http.StatusConflict, "resource %s was replaced meanwhile; add the account again", res.Name)
		}
		a.ResourceID, saved = res.ID, res
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
		if req.SkipLoginCheck {
			detail += ", stored without a login check"
		}
		return audit.Append(tx, c.User.Name, "account.create", res.Name+"/"+a.Name, "success", c.Source, detail)
	})
	if err != nil {
		return err
	}
	v := s.accountView(saved, a)
	v.Warnings = *notes
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *API) handleDeleteAccount(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
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
		return audit.Append(tx, c.User.Name, "account.delete", target, "success", c.Source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *API) handleCatalog(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	out := []api.CatalogEntry{}
	grants, err := s.reqs.LiveGrants(c.User.ID)
	if err != nil {
		return err
	}
	err = s.st.View(func(tx *store.Tx) error {
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
				g, ok := sessions.GrantFor(c.Roles, res.Name, a.Name)
				e, onRequest := requestCatalogEntry(c.Roles, res.Name, a.Name, grants)
				if !ok && !onRequest {
					continue
				}
				if !ok {
					g = sessions.Grant{RequireReason: e.requireReason, MaxDuration: e.max}
				}
				out = append(out, api.CatalogEntry{Resource: res.Name, Type: res.Type, Account: a.Name, Username: a.Username,
					Gateway: res.Gateway, GatewayGroup: res.GatewayGroup, GatewayOnline: s.hub.Reachable(res), RequireMFA: a.RequireMFA,
					RequireReason: g.RequireReason, MaxDuration: g.MaxDuration.String(), OnRequest: !ok, GrantEnds: e.grantEnds})
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

// handleTestResource checks, through the gateway, that a resource can be
// reached and each account can log in (where its kind can tell).
func (s *API) handleTestResource(w http.ResponseWriter, r *http.Request) error {
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
	k, err := s.kinds.Must(res)
	if err != nil {
		return err
	}
	out, err := k.Test(r.Context(), res, accts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleKinds describes every kind for the console's forms.
func (s *API) handleKinds(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.kinds.Schemas())
	return nil
}

// checkVia checks what is to reach a resource: one gateway that exists, or
// a gateway group (which has no record of its own: the admin puts gateways
// in it) that an enrolled gateway is in, or that an unused enrollment
// token puts the gateway it enrolls in, so that a mistyped group is
// refused rather than leaving the resource unreachable.
func checkVia(tx *store.Tx, gateway, group string) error {
	switch {
	case gateway != "" && group != "":
		return api.Errorf(http.StatusBadRequest, "--gateway and --gateway-group: name one, the gateway or the group of gateways that reaches this resource")
	case group != "":
		if err := api.ValidName("gateway group", group); err != nil {
			return err
		}
		return groupExists(tx, group)
	case gateway == "":
		return api.Errorf(http.StatusBadRequest, "--gateway: name the gateway that reaches this resource (see pamd gateways list), or --gateway-group a group of gateways")
	}
	if _, err := tx.GatewayByName(gateway); err != nil {
		return api.Errorf(http.StatusBadRequest, "no gateway named %q (see pamd gateways list)", gateway)
	}
	return nil
}

// groupExists refuses a gateway group no gateway is in, nor an unused
// enrollment token puts one in.
func groupExists(tx *store.Tx, group string) error {
	gws, err := tx.Gateways()
	if err != nil {
		return err
	}
	for _, g := range gws {
		if g.Group == group {
			return nil
		}
	}
	toks, err := tx.EnrollTokens()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, e := range toks {
		if e.Group == group && e.UsedAt.IsZero() && now.Before(e.ExpiresAt) {
			return nil
		}
	}
	return api.Errorf(http.StatusBadRequest, "no gateway is in group %q: put one in it first (pamd gateways set NAME --group %s, or pamd gateways token --name NAME --group %s), see pamd gateways list", group, group, group)
}
