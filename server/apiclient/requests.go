package apiclient

import (
	"context"
	"net/url"

	"github.com/pamd/pamd/server/api"
)

func requestPath(id string) string { return "/api/v1/requests/" + url.PathEscape(id) }

// CreateRequest asks for access: POST /api/v1/requests.
func (c *Client) CreateRequest(ctx context.Context, req api.CreateAccessRequest) (api.AccessRequest, error) {
	var out api.AccessRequest
	err := c.Do(ctx, "POST", "/api/v1/requests", req, &out)
	return out, err
}

// Requests lists the requests the user sees (theirs, those they approve,
// all for admins and auditors), only pending ones when pending:
// GET /api/v1/requests[?pending=true].
func (c *Client) Requests(ctx context.Context, pending bool) ([]api.AccessRequest, error) {
	path := "/api/v1/requests"
	if pending {
		path += "?pending=true"
	}
	var out []api.AccessRequest
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// Request fetches one request: GET /api/v1/requests/{id}.
func (c *Client) Request(ctx context.Context, id string) (api.AccessRequest, error) {
	var out api.AccessRequest
	err := c.Do(ctx, "GET", requestPath(id), nil, &out)
	return out, err
}

// ReviewRequest approves or denies (verdict "approve" or "deny") a
// request: POST /api/v1/requests/{id}/{verdict}.
func (c *Client) ReviewRequest(ctx context.Context, id, verdict, reason string) (api.AccessRequest, error) {
	var out api.AccessRequest
	err := c.Do(ctx, "POST", requestPath(id)+"/"+verdict, api.ReviewAccessRequest{Reason: reason}, &out)
	return out, err
}

// CancelRequest withdraws the user's request: POST /api/v1/requests/{id}/cancel.
func (c *Client) CancelRequest(ctx context.Context, id string) (api.AccessRequestChange, error) {
	var out api.AccessRequestChange
	err := c.Do(ctx, "POST", requestPath(id)+"/cancel", nil, &out)
	return out, err
}

// RevokeRequest ends an approved request's grant (admins):
// POST /api/v1/requests/{id}/revoke.
func (c *Client) RevokeRequest(ctx context.Context, id, reason string) (api.AccessRequestChange, error) {
	var out api.AccessRequestChange
	err := c.Do(ctx, "POST", requestPath(id)+"/revoke", api.ReviewAccessRequest{Reason: reason}, &out)
	return out, err
}
