package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

func (s *API) handleListGateways(w http.ResponseWriter, r *http.Request) error {
	out := []api.Gateway{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Gateways()
		for _, g := range all {
			v := api.Gateway{Name: g.Name, Version: g.Version, RemoteAddr: g.RemoteAddr, LastSeen: g.LastSeen, EnrolledAt: g.EnrolledAt, Group: g.Group,
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

// handleUpdateGateway changes what the admin owns on an enrolled
// gateway's record: its gateway group. A connected gateway whose group
// changed is cut and admitted again in its new group (hub.RecheckGroup).
func (s *API) handleUpdateGateway(w http.ResponseWriter, r *http.Request) error {
	var req api.GatewayUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Group == nil {
		return api.Errorf(http.StatusBadRequest, "nothing to change: pass --group GROUP or --no-group")
	}
	group := *req.Group
	if group != "" {
		if err := api.ValidName("gateway group", group); err != nil {
			return err
		}
	}
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var g *store.Gateway
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if g, err = tx.GatewayByName(name); err != nil {
			return err
		}
		if g.Group == group {
			return nil
		}
		detail := groupDetail(g.Group, group)
		g.Group = group
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "gateway.update", name, "success", c.Source, detail)
	})
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "no gateway %s (see pamd gateways list)", name)
	}
	if err != nil {
		return err
	}
	s.hub.RecheckGroup(name)
	writeJSON(w, http.StatusOK, api.Gateway{Name: g.Name, Online: s.hub.Online(g.Name), Version: g.Version, RemoteAddr: g.RemoteAddr, LastSeen: g.LastSeen,
		EnrolledAt: g.EnrolledAt, Group: g.Group, CertExpiresAt: g.CertExpiresAt, RevokedAt: g.RevokedAt})
	return nil
}

// groupDetail is the audit detail of a gateway's group change.
func groupDetail(from, to string) string {
	switch {
	case to == "":
		return "out of group " + from
	case from == "":
		return "into group " + to
	}
	return "group " + from + " -> " + to
}

// enrolledGroup puts a gateway enrolling with e in the token's group (a
// --replace token sets it again, emptying it when the token names none),
// and says so for the audit event.
func enrolledGroup(e *store.EnrollToken, g *store.Gateway) string {
	if g.Group == e.Group {
		if e.Group == "" {
			return ""
		}
		return "group " + e.Group
	}
	detail := groupDetail(g.Group, e.Group)
	g.Group = e.Group
	return detail
}

// handleRemoveGateway deletes a gateway's record: its certificate then
// names no enrolled gateway, so its tunnel is cut and it cannot connect
// again (a new enrollment of the name is a new gateway). Resources that
// name it move to move_to, as pamd resources set --gateway would move
// them, or the removal is refused; a connected gateway goes only with
// force.
func (s *API) handleRemoveGateway(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	to, force := r.URL.Query().Get("move_to"), r.URL.Query().Get("force") == "true"
	serving, err := s.checkRemoval(name, to, force)
	if err != nil {
		return err
	}
	moves, err := s.moveResources(r.Context(), serving, to)
	if err != nil {
		return err
	}
	online := s.hub.Online(name)
	out := api.GatewayRemoval{Name: name, Moved: []string{}, Cut: online}
	err = s.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(name)
		if err != nil {
			return err
		}
		now, err := resourcesOf(tx, name)
		if err != nil {
			return err
		}
		if !slices.Equal(resourceNames(now), resourceNames(serving)) {
			return api.Errorf(http.StatusConflict, "the resources of gateway %s changed meanwhile: try again", name)
		}
		for _, m := range moves {
			if err := tx.PutResource(m.res); err != nil {
				return err
			}
			detail := strings.Join(m.changed, "; ") + " (off gateway " + name + ", removed)"
			if err := audit.Append(tx, c.User.Name, "resource.update", m.res.Name, "success", c.Source, detail); err != nil {
				return err
			}
			out.Moved, out.MovedTo = append(out.Moved, m.res.Name), to
		}
		voided, err := voidEnrollTokens(tx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteGateway(g); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "gateway.remove", name, "success", c.Source, removalDetail(out, voided))
	})
	if err != nil {
		return err
	}
	s.hub.Recheck(name, "removed by "+c.User.Name)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkRemoval refuses removing a gateway that resources still name (but
// to takes them) or that is connected (but force cuts it), and returns the
// resources to move.
func (s *API) checkRemoval(name, to string, force bool) ([]*store.Resource, error) {
	if to == name {
		return nil, api.Errorf(http.StatusBadRequest, "--move-to names the gateway being removed")
	}
	var serving []*store.Resource
	err := s.st.View(func(tx *store.Tx) (err error) {
		if _, err := tx.GatewayByName(name); errors.Is(err, store.ErrNotFound) {
			return api.Errorf(http.StatusNotFound, "no gateway %s", name)
		} else if err != nil {
			return err
		}
		if to != "" {
			other, err := tx.GatewayByName(to)
			if errors.Is(err, store.ErrNotFound) {
				return api.Errorf(http.StatusBadRequest, "--move-to: no gateway named %q (see pamd gateways list)", to)
			}
			if err != nil {
				return err
			}
			if !other.RevokedAt.IsZero() && other.CertSerial == "" {
				return api.Errorf(http.StatusBadRequest, "--move-to: gateway %s is revoked", to)
			}
		}
		serving, err = resourcesOf(tx, name)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case len(serving) > 0 && to == "":
		return nil, api.Errorf(http.StatusConflict, "gateway %s still serves %s: move them with --move-to OTHER (or pamd resources set NAME --gateway OTHER), or remove them first",
			name, strings.Join(resourceNames(serving), ", "))
	case s.hub.Online(name) && !force:
		unsent := ""
		if b := s.hub.Backlog(name); b != nil && b.Records > 0 {
			unsent = fmt.Sprintf(" and holds %d session records not uploaded yet, which would be lost", b.Records)
		}
		return nil, api.Errorf(http.StatusConflict, "gateway %s is connected%s: pass --force to cut its tunnel and remove it", name, unsent)
	}
	return serving, nil
}

// resourceMove is a resource set to its new gateway, and what changed.
type resourceMove struct {
	res     *store.Resource
	changed []string
}

// moveResources sets each resource's gateway to to, through its kind as an
// update would (an ssh resource re-pins its host key through the new
// gateway, a mongodb one is probed through it). Nothing is stored yet.
func (s *API) moveResources(ctx context.Context, serving []*store.Resource, to string) ([]resourceMove, error) {
	var moves []resourceMove
	for _, res := range serving {
		k, err := s.kinds.Must(res)
		if err != nil {
			return nil, err
		}
		res.Gateway = to
		out := &kind.Outcome{Changed: []string{"gateway " + to}}
		if err := k.Update(ctx, res, &api.ResourceUpdate{Gateway: &to}, true, out); err != nil {
			return nil, movingError(res.Name, to, err)
		}
		moves = append(moves, resourceMove{res: res, changed: out.Changed})
	}
	return moves, nil
}

// movingError says which move failed, keeping the kind's status.
func movingError(resource, to string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return &api.Error{Status: ae.Status, Code: ae.Code, Message: "moving resource " + resource + " to gateway " + to + ": " + ae.Message}
	}
	return fmt.Errorf("moving resource %s to gateway %s: %w", resource, to, err)
}

// resourcesOf is the resources that name the gateway, by name.
func resourcesOf(tx *store.Tx, gateway string) ([]*store.Resource, error) {
	all, err := tx.Resources()
	var out []*store.Resource
	for _, res := range all {
		if res.Gateway == gateway {
			out = append(out, res)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func resourceNames(rs []*store.Resource) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names
}

// voidEnrollTokens deletes the unused enrollment tokens for a gateway's
// name: one issued before the removal must not bring it back.
func voidEnrollTokens(tx *store.Tx, name string) (int, error) {
	all, err := tx.EnrollTokens()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range all {
		if e.GatewayName == name && e.UsedAt.IsZero() {
			if err := tx.DeleteEnrollToken(e.Hash); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// removalDetail is the audit detail of a gateway's removal.
func removalDetail(out api.GatewayRemoval, voided int) string {
	var parts []string
	if len(out.Moved) > 0 {
		parts = append(parts, fmt.Sprintf("moved %s to %s", strings.Join(out.Moved, ", "), out.MovedTo))
	}
	if out.Cut {
		parts = append(parts, "tunnel cut")
	}
	if voided > 0 {
		parts = append(parts, fmt.Sprintf("%d unused enrollment tokens voided", voided))
	}
	return strings.Join(parts, "; ")
}
