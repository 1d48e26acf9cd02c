package apiclient

import (
	"context"

	"github.com/pamd/pamd/server/api"
)

// Info fetches what a client needs before logging in: GET /api/v1/info.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var out api.Info
	err := c.Do(ctx, "GET", "/api/v1/info", nil, &out)
	return out, err
}

// Login exchanges a name, a password and maybe an MFA code for a token:
// POST /api/v1/auth/login. A missing code is an *api.Error with
// Code api.CodeMFARequired.
func (c *Client) Login(ctx context.Context, req api.LoginRequest) (api.LoginResponse, error) {
	var out api.LoginResponse
	err := c.Do(ctx, "POST", "/api/v1/auth/login", req, &out)
	return out, err
}

// Logout revokes the client's token: POST /api/v1/auth/logout.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, "POST", "/api/v1/auth/logout", nil, nil)
}

// WhoAmI returns the token's user: GET /api/v1/auth/whoami.
func (c *Client) WhoAmI(ctx context.Context) (api.User, error) {
	var out api.User
	err := c.Do(ctx, "GET", "/api/v1/auth/whoami", nil, &out)
	return out, err
}

// ChangePassword sets the user's own password: POST /api/v1/auth/password.
func (c *Client) ChangePassword(ctx context.Context, req api.ChangePasswordRequest) error {
	return c.Do(ctx, "POST", "/api/v1/auth/password", req, nil)
}

// EnrollMFA starts a TOTP enrollment: POST /api/v1/mfa/enroll.
func (c *Client) EnrollMFA(ctx context.Context, req api.MFAEnrollRequest) (api.MFAEnrollResponse, error) {
	var out api.MFAEnrollResponse
	err := c.Do(ctx, "POST", "/api/v1/mfa/enroll", req, &out)
	return out, err
}

// ConfirmMFA finishes an enrollment with a code: POST /api/v1/mfa/confirm.
func (c *Client) ConfirmMFA(ctx context.Context, req api.MFAConfirmRequest) error {
	return c.Do(ctx, "POST", "/api/v1/mfa/confirm", req, nil)
}
