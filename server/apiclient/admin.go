package apiclient

import (
	"context"
	"net/url"

	"github.com/pamd/pamd/server/api"
)

// Users lists the users: GET /api/v1/users.
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var out []api.User
	err := c.Do(ctx, "GET", "/api/v1/users", nil, &out)
	return out, err
}

// CreateUser adds a user and returns its one-time password: POST /api/v1/users.
func (c *Client) CreateUser(ctx context.Context, req api.CreateUserRequest) (api.CreateUserResponse, error) {
	var out api.CreateUserResponse
	err := c.Do(ctx, "POST", "/api/v1/users", req, &out)
	return out, err
}

// DisableUser ends a user's sessions and tokens and refuses their logins:
// POST /api/v1/users/{name}/disable.
func (c *Client) DisableUser(ctx context.Context, name string) error {
	return c.Do(ctx, "POST", userPath(name, "disable"), nil, nil)
}

// EnableUser re-enables a user: POST /api/v1/users/{name}/enable.
func (c *Client) EnableUser(ctx context.Context, name string) error {
	return c.Do(ctx, "POST", userPath(name, "enable"), nil, nil)
}

// ResetUserMFA removes a user's MFA enrollment: POST /api/v1/users/{name}/reset-mfa.
func (c *Client) ResetUserMFA(ctx context.Context, name string) error {
	return c.Do(ctx, "POST", userPath(name, "reset-mfa"), nil, nil)
}

// UserTokens lists a user's API tokens: GET /api/v1/users/{name}/tokens.
func (c *Client) UserTokens(ctx context.Context, name string) ([]api.TokenInfo, error) {
	var out []api.TokenInfo
	err := c.Do(ctx, "GET", userPath(name, "tokens"), nil, &out)
	return out, err
}

// RevokeUserTokens ends a user's tokens and live sessions (the caller's
// own token stays): DELETE /api/v1/users/{name}/tokens.
func (c *Client) RevokeUserTokens(ctx context.Context, name string) (api.RevokeTokensResponse, error) {
	var out api.RevokeTokensResponse
	err := c.Do(ctx, "DELETE", userPath(name, "tokens"), nil, &out)
	return out, err
}

// UpdateUser adds and removes a user's roles: PATCH /api/v1/users/{name}.
func (c *Client) UpdateUser(ctx context.Context, name string, req api.UserUpdate) (api.UserChange, error) {
	var out api.UserChange
	err := c.Do(ctx, "PATCH", "/api/v1/users/"+url.PathEscape(name), req, &out)
	return out, err
}

// ResetUserPassword gives a user a new one-time password and ends their
// tokens and sessions: POST /api/v1/users/{name}/reset-password.
func (c *Client) ResetUserPassword(ctx context.Context, name string) (api.ResetPasswordResponse, error) {
	var out api.ResetPasswordResponse
	err := c.Do(ctx, "POST", userPath(name, "reset-password"), nil, &out)
	return out, err
}

// DeleteUser removes a user, their tokens and live sessions: DELETE /api/v1/users/{name}.
func (c *Client) DeleteUser(ctx context.Context, name string) (api.UserChange, error) {
	var out api.UserChange
	err := c.Do(ctx, "DELETE", "/api/v1/users/"+url.PathEscape(name), nil, &out)
	return out, err
}

func userPath(name, action string) string {
	return "/api/v1/users/" + url.PathEscape(name) + "/" + action
}

// Roles lists the roles: GET /api/v1/roles.
func (c *Client) Roles(ctx context.Context) ([]api.Role, error) {
	var out []api.Role
	err := c.Do(ctx, "GET", "/api/v1/roles", nil, &out)
	return out, err
}

// CreateRole adds a role: POST /api/v1/roles.
func (c *Client) CreateRole(ctx context.Context, req api.Role) (api.Role, error) {
	var out api.Role
	err := c.Do(ctx, "POST", "/api/v1/roles", req, &out)
	return out, err
}

// DeleteRole removes a role: DELETE /api/v1/roles/{name}.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", "/api/v1/roles/"+url.PathEscape(name), nil, nil)
}

// UpdateRole edits a role: PATCH /api/v1/roles/{name}.
func (c *Client) UpdateRole(ctx context.Context, name string, req api.RoleUpdate) (api.RoleChange, error) {
	var out api.RoleChange
	err := c.Do(ctx, "PATCH", "/api/v1/roles/"+url.PathEscape(name), req, &out)
	return out, err
}

// Gateways lists the gateways: GET /api/v1/gateways.
func (c *Client) Gateways(ctx context.Context) ([]api.Gateway, error) {
	var out []api.Gateway
	err := c.Do(ctx, "GET", "/api/v1/gateways", nil, &out)
	return out, err
}

// CreateGatewayToken makes a one-time enrollment token: POST /api/v1/gateways/tokens.
func (c *Client) CreateGatewayToken(ctx context.Context, req api.GatewayTokenRequest) (api.GatewayTokenResponse, error) {
	var out api.GatewayTokenResponse
	err := c.Do(ctx, "POST", "/api/v1/gateways/tokens", req, &out)
	return out, err
}

// RevokeGateway revokes a gateway's certificate: POST /api/v1/gateways/{name}/revoke.
func (c *Client) RevokeGateway(ctx context.Context, name string) error {
	return c.Do(ctx, "POST", "/api/v1/gateways/"+url.PathEscape(name)+"/revoke", nil, nil)
}

// RemoveGateway deletes a gateway, moving its resources to moveTo (may be
// ""); force cuts a connected one: DELETE /api/v1/gateways/{name}.
func (c *Client) RemoveGateway(ctx context.Context, name, moveTo string, force bool) (api.GatewayRemoval, error) {
	q := url.Values{}
	if moveTo != "" {
		q.Set("move_to", moveTo)
	}
	if force {
		q.Set("force", "true")
	}
	path := "/api/v1/gateways/" + url.PathEscape(name)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.GatewayRemoval
	err := c.Do(ctx, "DELETE", path, nil, &out)
	return out, err
}
