package httpapi

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

func (s *API) handleListGateways(w http.ResponseWriter, r *http.Request) error {
	out := []api.Gateway{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Gateways()
		for _, g := range all {
			v := api.Gateway{Name: g.Name, Version: g.Version, RemoteAddr: g.RemoteAddr, LastSeen: g.LastSeen, EnrolledAt: g.EnrolledAt,
				CertExpiresAt: g.CertExpiresAt, RevokedAt: g.RevokedAt}
			if s.hub.Online(g.Name) {
				v.Online, v.LastSeen = true, time.Now().UTC()
				v.Backlog = s.hub.Backlog(g.Name)
			}
			out = append(out, v)
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

// checkGatewayName refuses a token for an enrolled name unless it replaces it.
func (s *API) checkGatewayName(name string, replace bool) error {
	err := s.st.View(func(tx *store.Tx) error { _, err := tx.GatewayByName(name); return err })
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case !replace:
		return api.Errorf(http.StatusConflict, "gateway %s is already enrolled: pass --replace to enroll a new gateway in its place (the current one's certificate stops working when the new one enrolls)", name)
	}
	return nil
}

func (s *API) handleRevokeGateway(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var g *store.Gateway
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if g, err = tx.GatewayByName(name); err != nil {
			return err
		}
		if g.RevokedAt.IsZero() || g.CertSerial != "" {
			g.RevokedAt = time.Now().UTC()
		}
		g.CertSerial, g.PrevSerial = "", ""
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "gateway.revoke", name, "success", c.Source, "")
	})
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "no gateway %s", name)
	}
	if err != nil {
		return err
	}
	s.hub.Recheck(name, "certificate revoked by "+c.User.Name)
	writeJSON(w, http.StatusOK, api.Gateway{Name: g.Name, Version: g.Version, RemoteAddr: g.RemoteAddr, LastSeen: g.LastSeen,
		EnrolledAt: g.EnrolledAt, CertExpiresAt: g.CertExpiresAt, RevokedAt: g.RevokedAt})
	return nil
}
