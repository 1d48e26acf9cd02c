package httpapi

import (
	"fmt"
	"net/http"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// The HTTP handlers of the kinds' extra abilities (kind.Pinner, kind.UserCA).

func (s *API) handleTrustHostKey(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	var res *store.Resource
	if err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.ResourceByName(r.PathValue("name")); return }); err != nil {
		return err
	}
	k, _ := s.kinds.Of(res.Type)
	p, ok := k.(kind.Pinner)
	if !ok {
		return api.Errorf(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	old := p.Fingerprint(res)
	fp, err := p.Pin(r.Context(), res)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutResource(res); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "resource.trust_host_key", res.Name, "success", c.Source, "pinned "+fp+", was "+old)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.resourceView(res))
	return nil
}

// userCAOf finds the resource a request's path names by id, and its user CA.
func (s *API) userCAOf(r *http.Request) (*store.Resource, kind.UserCA, error) {
	var res *store.Resource
	err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.Resource(r.PathValue("id")); return })
	if err != nil {
		return nil, nil, api.Errorf(http.StatusNotFound, "no resource with id %q", r.PathValue("id"))
	}
	k, _ := s.kinds.Of(res.Type)
	ca, ok := k.(kind.UserCA)
	if !ok {
		return nil, nil, api.Errorf(http.StatusBadRequest, "resource %s is %s, not ssh", res.Name, res.Type)
	}
	return res, ca, nil
}

func (s *API) handleSSHCAPublicKey(w http.ResponseWriter, r *http.Request) error {
	res, ca, err := s.userCAOf(r)
	if err != nil {
		return err
	}
	line, err := ca.CALine(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, line)
	return nil
}

func (s *API) handleSSHCASetup(w http.ResponseWriter, r *http.Request) error {
	res, ca, err := s.userCAOf(r)
	if err != nil {
		return err
	}
	script, err := ca.SetupScript(res)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	fmt.Fprint(w, script)
	return nil
}
