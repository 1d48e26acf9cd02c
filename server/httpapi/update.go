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
	"github.com/pamd/pamd/store"
)

// viaUpdate is the gateway and group an update moves res to (one of the
// two set), and whether it moves it at all. Naming both is left to
// checkVia to refuse.
func viaUpdate(res *store.Resource, u *api.ResourceUpdate) (gateway, group string, moved bool) {
	gateway, group = res.Gateway, res.GatewayGroup
	switch {
	case u.Gateway != nil && u.GatewayGroup != nil:
		return *u.Gateway, *u.GatewayGroup, true
	case u.Gateway != nil:
		gateway, group = *u.Gateway, ""
	case u.GatewayGroup != nil:
		gateway, group = "", *u.GatewayGroup
	}
	return gateway, group, gateway != res.Gateway || group != res.GatewayGroup
}

// handleUpdateResource changes a resource's gateway, address or settings,
// checking the result as creation does. A new address for an ssh resource
// re-pins its host key, and the audit event says so.
func (s *API) handleUpdateResource(w http.ResponseWriter, r *http.Request) error {
	var req api.ResourceUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	var res *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	var changed []string
	moved := false
	if gateway, group, ok := viaUpdate(res, &req); ok {
		if err := s.st.View(func(tx *store.Tx) error { return checkVia(tx, gateway, group) }); err != nil {
			return err
		}
		res.Gateway, res.GatewayGroup, moved = gateway, group, true
		changed = append(changed, kind.Via(res))
	}
	k, err := s.kinds.Must(res)
	if err != nil {
		return err
	}
	policy := rotation.TakePolicy(req.Options)
	out := &kind.Outcome{Changed: changed}
	if err := k.Update(r.Context(), res, &req, moved, out); err != nil {
		return err
	}
	changed, warnings := out.Changed, out.Warnings
	if err := rotation.SetPolicy(k, res, policy, &changed); err != nil {
		return err
	}
	if len(changed) == 0 {
		return api.Errorf(http.StatusBadRequest, "nothing to change")
	}
	sort.Strings(changed)
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutResource(res); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "resource.update", res.Name, "success", c.Source, strings.Join(changed, "; "))
	})
	if err != nil {
		return err
	}
	v := s.resourceView(res)
	v.Warnings = warnings
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleUpdateAccount changes an account; secrets given replace the stored
// ones and are checked as when the account was added.
func (s *API) handleUpdateAccount(w http.ResponseWriter, r *http.Request) error {
	var req api.AccountUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	res, a, err := s.accountOfPath(r)
	if err != nil {
		return err
	}
	// A rotation settling meanwhile would be overwritten by this stale copy
	// (losing a promoted credential): wait for none to run, then read again.
	if !s.rot.Claim(a.ID) {
		return api.Errorf(http.StatusConflict, "a rotation of %s/%s is running; change the account when it has ended", res.Name, a.Name)
	}
	defer s.rot.Release(a.ID)
	if res, a, err = s.accountOfPath(r); err != nil {
		return err
	}
	var changed []string
	set := func(dst *string, v *string, what string, secret bool) {
		if v == nil || *v == *dst {
			return
		}
		*dst = *v
		if secret {
			changed = append(changed, what+" replaced")
		} else {
			changed = append(changed, what+" "+*v)
		}
	}
	set(&a.Username, req.Username, "username", false)
	set(&a.Auth, req.Auth, "auth", false)
	set(&a.Password, req.Password, "password", true)
	set(&a.PrivateKey, req.PrivateKey, "private key", true)
	set(&a.Passphrase, req.Passphrase, "passphrase", true)
	set(&a.Domain, req.Domain, "domain", false)
	set(&a.Realm, req.Realm, "realm", false)
	set(&a.SPN, req.SPN, "spn", false)
	set(&a.KDC, req.KDC, "kdc", false)
	set(&a.UPN, req.UPN, "upn", false)
	set(&a.SID, req.SID, "sid", false)
	set(&a.KDCCA, req.KDCCA, "KDC CA", true)
	set(&a.KDCHostname, req.KDCHostname, "kdc hostname", false)
	set(&a.Keytab, req.Keytab, "keytab", true)
	loginChanged := len(changed) > 0 // what the target sees of a login
	set(&a.Description, req.Description, "description", false)
	if req.RequireMFA != nil && *req.RequireMFA != a.RequireMFA {
		a.RequireMFA = *req.RequireMFA
		changed = append(changed, "require MFA "+strconv.FormatBool(a.RequireMFA))
	}
	settingsChanged := len(changed) > 0
	if err := s.updateRotation(res, a, &req, &changed); err != nil {
		return err
	}
	if (req.Password != nil || req.PrivateKey != nil) && a.Rotation.Pending != nil {
		// The credential an admin gives wins over an unfinished rotation.
		a.Rotation.Pending = nil
		changed = append(changed, "unfinished rotation dropped")
	}
	if len(changed) == 0 {
		return api.Errorf(http.StatusBadRequest, "nothing to change")
	}
	notes := new([]string)
	if settingsChanged { // only the rotation's settings: nothing to check at the target
		k, err := s.kinds.Must(res)
		if err != nil {
			return err
		}
		checkCtx, n := kind.WithNotes(r.Context())
		notes = n
		// A description or MFA change is checked, not logged in with.
		if req.SkipLoginCheck || !loginChanged {
			checkCtx = kind.WithoutLoginCheck(checkCtx)
		}
		if err := k.CheckAccount(checkCtx, res, a, true); err != nil {
			return err
		}
	}
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutAccount(a); err != nil {
			return err
		}
		detail := strings.Join(changed, "; ")
		if req.SkipLoginCheck && loginChanged {
			detail += "; stored without a login check"
		}
		return audit.Append(tx, c.User.Name, "account.update", res.Name+"/"+a.Name, "success", c.Source, detail)
	})
	if err != nil {
		return err
	}
	v := s.accountView(res, a)
	v.Warnings = *notes
	writeJSON(w, http.StatusOK, v)
	return nil
}

// updateRotation applies an update's rotation schedule and rotation account.
func (s *API) updateRotation(res *store.Resource, a *store.Account, req *api.AccountUpdate, changed *[]string) error {
	if req.RotationInterval == nil && req.RotateWith == nil {
		return nil
	}
	if why := s.rot.Rotatable(res, a); why != "" {
		return api.Errorf(http.StatusBadRequest, "%s", why)
	}
	if req.RotationInterval != nil {
		d, err := rotation.ParseInterval(*req.RotationInterval)
		if err != nil {
			return err
		}
		if d != a.Rotation.Interval {
			a.Rotation.Interval, a.Rotation.Since = d, time.Now().UTC()
			if d == 0 {
				*changed = append(*changed, "rotation schedule off")
			} else {
				*changed = append(*changed, "rotation every "+rotation.FormatInterval(d))
			}
		}
	}
	if req.RotateWith != nil {
		with := strings.TrimPrefix(*req.RotateWith, res.Name+"/")
		if with == a.Name {
			with = ""
		}
		if with != "" {
			if strings.Contains(with, "/") {
				return api.Errorf(http.StatusBadRequest, "--rotate-with: the rotation account must be on the same resource (%s/ACCOUNT)", res.Name)
			}
			if err := s.st.View(func(tx *store.Tx) error { _, err := tx.AccountByName(res.ID, with); return err }); err != nil {
				return api.Errorf(http.StatusBadRequest, "--rotate-with: resource %s has no account %q", res.Name, with)
			}
		}
		if with != a.Rotation.With {
			a.Rotation.With = with
			if with == "" {
				*changed = append(*changed, "rotates as itself")
			} else {
				*changed = append(*changed, "rotates with "+res.Name+"/"+with)
			}
		}
	}
	return nil
}

// accountOfPath finds the resource and account a request's path names.
func (s *API) accountOfPath(r *http.Request) (res *store.Resource, a *store.Account, err error) {
	err = s.st.View(func(tx *store.Tx) error {
		if res, err = tx.ResourceByName(r.PathValue("name")); err != nil {
			return err
		}
		a, err = tx.AccountByName(res.ID, r.PathValue("account"))
		return err
	})
	return res, a, err
}

// handleRotateAccount rotates an account now and answers with its status.
func (s *API) handleRotateAccount(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	res, a, err := s.accountOfPath(r)
	if err != nil {
		return err
	}
	// A client that stops waiting does not stop the rotation: the gateway
	// goes on with it, so the server waits for its answer (until shutdown).
	ctx, stop := s.untilShutdown(r)
	defer stop()
	a, err = s.rot.Rotate(ctx, res.ID, a.ID, "on demand by "+c.User.Name, c.User.Name, c.Source)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RotateResult{Account: s.accountView(res, a), LiveSessions: s.live.OnAccount(a.ID)})
	return nil
}
