package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/requests"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

// Just-in-time access requests: the routes under /api/v1/requests, the
// grant a session takes from an approved one, and roles' request fields.

func reviewer(c *auth.Caller) requests.Reviewer {
	return requests.Reviewer{ID: c.User.ID, Name: c.User.Name, Roles: c.User.Roles, Admin: c.IsAdmin()}
}

// requestError is a refusal of the requests package as an API error.
func requestError(err error) error {
	status := 0
	switch {
	case errors.Is(err, requests.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, requests.ErrForbidden), errors.Is(err, requests.ErrNotGrant):
		status = http.StatusForbidden
	case errors.Is(err, requests.ErrState):
		status = http.StatusConflict
	case errors.Is(err, requests.ErrNotFound):
		status = http.StatusNotFound
	default:
		return err
	}
	return api.Errorf(status, "%s", err.Error())
}

func requestView(r *store.Request, c *auth.Caller) api.AccessRequest {
	v := api.AccessRequest{ID: r.ID, User: r.UserName, Resource: r.ResourceName, Account: r.AccountName, Reason: r.Reason,
		Duration: r.Duration.String(), Role: r.Role, Approvers: r.Approvers, ApprovalsNeeded: r.Approvals,
		Approvals: requests.Approvals(r), State: r.State, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
		ApprovedAt: r.ApprovedAt, GrantEnds: r.GrantEnds, ClosedAt: r.ClosedAt, ClosedBy: r.ClosedBy,
		CloseReason: r.CloseReason, Reviews: []api.Review{}, Uses: r.Uses}
	for _, rv := range r.Reviews {
		verdict := "deny"
		if rv.Approve {
			verdict = "approve"
		}
		v.Reviews = append(v.Reviews, api.Review{User: rv.UserName, Verdict: verdict, Reason: rv.Reason, At: rv.At})
	}
	v.CanReview = r.State == store.RequestPending && requests.CanReview(r, reviewer(c))
	return v
}

func (s *API) handleCreateRequest(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateAccessRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ask := requests.Ask{Resource: req.Resource, Account: req.Account, Reason: req.Reason}
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return api.Errorf(http.StatusBadRequest, "duration %q: want a duration such as 30m or 2h", req.Duration)
		}
		ask.Duration = d
	}
	c := auth.CallerOf(r)
	out, err := s.reqs.Create(c.User, c.Roles, c.Source, ask)
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusCreated, requestView(out, c))
	return nil
}

func (s *API) handleListRequests(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	all, err := s.reqs.List(reviewer(c), c.CanRead(), r.URL.Query().Get("pending") == "true")
	if err != nil {
		return err
	}
	out := []api.AccessRequest{}
	for _, q := range all {
		out = append(out, requestView(q, c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleGetRequest(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	q, err := s.reqs.Get(r.PathValue("id"), reviewer(c), c.CanRead())
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusOK, requestView(q, c))
	return nil
}

// reviewBody reads the optional body of a review: its reason.
func reviewBody(r *http.Request) (api.ReviewAccessRequest, error) {
	var req api.ReviewAccessRequest
	if r.ContentLength == 0 {
		return req, nil
	}
	return req, decode(r, &req)
}

func (s *API) handleApproveRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := reviewBody(r)
	if err != nil {
		return err
	}
	c := auth.CallerOf(r)
	q, err := s.reqs.Approve(r.PathValue("id"), reviewer(c), c.Source, req.Reason)
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusOK, requestView(q, c))
	return nil
}

func (s *API) handleDenyRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := reviewBody(r)
	if err != nil {
		return err
	}
	c := auth.CallerOf(r)
	q, err := s.reqs.Deny(r.PathValue("id"), reviewer(c), c.Source, req.Reason)
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusOK, requestView(q, c))
	return nil
}

func (s *API) handleCancelRequest(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	q, n, err := s.reqs.Cancel(r.Context(), r.PathValue("id"), reviewer(c), c.Source)
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusOK, api.AccessRequestChange{Request: requestView(q, c), SessionsEnded: n})
	return nil
}

func (s *API) handleRevokeRequest(w http.ResponseWriter, r *http.Request) error {
	req, err := reviewBody(r)
	if err != nil {
		return err
	}
	c := auth.CallerOf(r)
	q, n, err := s.reqs.Revoke(r.Context(), r.PathValue("id"), reviewer(c), c.Source, req.Reason)
	if err != nil {
		return requestError(err)
	}
	writeJSON(w, http.StatusOK, api.AccessRequestChange{Request: requestView(q, c), SessionsEnded: n})
	return nil
}

// requestGrant is the grant an approved access request of the caller
// gives for resource/account, when the caller's roles let them request it.
// Without one, the refusal says what to do: ask, or wait for approvers.
// ok is false, with no refusal, when no role lets the caller request it.
func (s *API) requestGrant(c *auth.Caller, resource, account string) (g sessions.Grant, ok bool, refusal *api.Error) {
	if _, can := sessions.RequestableFor(c.Roles, resource, account); !can {
		return g, false, nil
	}
	target := resource + "/" + account
	grant, pending, err := s.reqs.ForSession(c.User.ID, resource, account)
	switch {
	case err != nil:
		s.log.Error("access requests: look up a grant", "err", err)
		return g, false, api.Errorf(http.StatusInternalServerError, "internal error (see the server log)")
	case grant != nil:
		return sessions.Grant{MaxDuration: time.Until(grant.GrantEnds), Request: grant}, true, nil
	case pending != nil:
		return g, false, api.Errorf(http.StatusForbidden, "access to %s waits for approval: request %s has %d of %d approvals",
			target, pending.ID, requests.Approvals(pending), pending.Approvals)
	}
	return g, false, api.Errorf(http.StatusForbidden, "access to %s needs an approved access request: run pamd requests create %s --reason ...", target, target)
}

// Roles' request fields.

func checkRequestPatterns(patterns []string) error {
	for _, p := range patterns {
		if err := sessions.ValidPattern(p); err != nil {
			return api.Errorf(http.StatusBadRequest, "request %q: %v", p, err)
		}
	}
	return nil
}

func checkApprovals(n int) error {
	if n < 0 || n > 10 {
		return api.Errorf(http.StatusBadRequest, "approvals %d: want 1 to 10", n)
	}
	return nil
}

func parseRequestTTL(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > 30*24*time.Hour {
		return 0, api.Errorf(http.StatusBadRequest, "request ttl %q: want a duration such as 4h or 24h, at most 720h", v)
	}
	return d, nil
}

// setRoleRequests fills a new role's request fields from req.
func setRoleRequests(role *store.Role, req api.Role) error {
	if err := checkRequestPatterns(req.Request); err != nil {
		return err
	}
	if err := checkApprovals(req.Approvals); err != nil {
		return err
	}
	role.Request, role.Approvers, role.Approvals = slices.Compact(req.Request), slices.Compact(req.Approvers), req.Approvals
	if req.RequestTTL != "" {
		d, err := parseRequestTTL(req.RequestTTL)
		if err != nil {
			return err
		}
		role.RequestTTL = d
	}
	return nil
}

// checkApprovers refuses approver roles that do not exist.
func checkApprovers(tx *store.Tx, names []string) error {
	for _, n := range names {
		if _, err := tx.RoleByName(n); err != nil {
			return api.Errorf(http.StatusBadRequest, "approvers: no role named %q (see pamd roles list)", n)
		}
	}
	return nil
}

// roleRequestsDetail is a role's request fields for its audit event.
func roleRequestsDetail(r *store.Role) string {
	if len(r.Request) == 0 {
		return ""
	}
	return fmt.Sprintf("; request: %s (approvers %s, approvals %d)", strings.Join(r.Request, ","),
		strings.Join(orSlice(r.Approvers, sessions.DefaultApprover), ","), max(r.Approvals, 1))
}

func orSlice(a []string, b string) []string {
	if len(a) > 0 {
		return a
	}
	return []string{b}
}

// editRoleRequests applies req's request fields to role and says what changed.
func editRoleRequests(role *store.Role, req api.RoleUpdate) ([]string, error) {
	if req.Request != nil && len(req.AddRequest)+len(req.RemoveRequest) > 0 {
		return nil, api.Errorf(http.StatusBadRequest, "request replaces the role's request patterns: give it alone, or add and remove patterns instead")
	}
	var changed []string
	if req.Request != nil {
		if err := checkRequestPatterns(*req.Request); err != nil {
			return nil, err
		}
		if p := slices.Compact(slices.Clone(*req.Request)); !slices.Equal(p, role.Request) {
			role.Request = p
			changed = append(changed, "request: "+strings.Join(p, ","))
		}
	}
	if err := checkRequestPatterns(req.AddRequest); err != nil {
		return nil, err
	}
	for _, p := range req.AddRequest {
		if !slices.Contains(role.Request, p) {
			role.Request = append(role.Request, p)
			changed = append(changed, "request +"+p)
		}
	}
	for _, p := range req.RemoveRequest {
		if !slices.Contains(role.Request, p) {
			return nil, api.Errorf(http.StatusBadRequest, "role %s has no request pattern %q (it has: %s)", role.Name, p, strings.Join(role.Request, " "))
		}
		role.Request = slices.DeleteFunc(role.Request, func(x string) bool { return x == p })
		changed = append(changed, "request -"+p)
	}
	if req.Approvers != nil {
		if a := slices.Compact(slices.Clone(*req.Approvers)); !slices.Equal(a, role.Approvers) {
			role.Approvers = a
			changed = append(changed, "approvers: "+strings.Join(a, ","))
		}
	}
	if req.Approvals != nil && *req.Approvals != role.Approvals {
		if err := checkApprovals(*req.Approvals); err != nil {
			return nil, err
		}
		role.Approvals = *req.Approvals
		changed = append(changed, "approvals "+strconv.Itoa(role.Approvals))
	}
	if req.RequestTTL != nil {
		d, err := parseRequestTTL(*req.RequestTTL)
		if err != nil {
			return nil, err
		}
		if d != role.RequestTTL {
			role.RequestTTL = d
			changed = append(changed, "request ttl "+d.String())
		}
	}
	return changed, nil
}

// requestEntry is what the catalog says of a target on request.
type requestEntry struct {
	requireReason bool
	max           time.Duration
	grantEnds     time.Time
}

// requestCatalogEntry is the catalog's view of a target the roles let the
// caller request, with the end of their live grant for it (grants, by
// RESOURCE/ACCOUNT); ok is false when no role lets them request it.
func requestCatalogEntry(roles []*store.Role, resource, account string, grants map[string]time.Time) (requestEntry, bool) {
	q, ok := sessions.RequestableFor(roles, resource, account)
	if !ok {
		return requestEntry{}, false
	}
	return requestEntry{requireReason: q.RequireReason, max: q.MaxDuration, grantEnds: grants[resource+"/"+account]}, true
}
