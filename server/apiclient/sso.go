package apiclient

import (
	"context"

	"github.com/pamd/pamd/server/api"
)

// SSO is the SSO settings, never the client secret: GET /api/v1/sso.
func (c *Client) SSO(ctx context.Context) (api.SSOView, error) {
	var out api.SSOView
	err := c.Do(ctx, "GET", "/api/v1/sso", nil, &out)
	return out, err
}

// SetSSO stores the SSO settings after checking the provider answers:
// PUT /api/v1/sso.
func (c *Client) SetSSO(ctx context.Context, req api.SSOSettings) (api.SSOView, error) {
	var out api.SSOView
	err := c.Do(ctx, "PUT", "/api/v1/sso", req, &out)
	return out, err
}

// DisableSSO forgets the SSO settings: DELETE /api/v1/sso.
func (c *Client) DisableSSO(ctx context.Context) error {
	return c.Do(ctx, "DELETE", "/api/v1/sso", nil, nil)
}

// SSOBegin starts a CLI login through the provider: POST /api/v1/sso/cli/begin.
func (c *Client) SSOBegin(ctx context.Context, req api.SSOBeginRequest) (api.SSOBeginResponse, error) {
	var out api.SSOBeginResponse
	err := c.Do(ctx, "POST", "/api/v1/sso/cli/begin", req, &out)
	return out, err
}

// SSOFinish hands the server the provider's answer and gets a token back:
// POST /api/v1/sso/cli/finish.
func (c *Client) SSOFinish(ctx context.Context, req api.SSOFinishRequest) (api.LoginResponse, error) {
	var out api.LoginResponse
	err := c.Do(ctx, "POST", "/api/v1/sso/cli/finish", req, &out)
	return out, err
}

// SyncUser re-applies the group mapping to an SSO user and ends their
// tokens and sessions: POST /api/v1/users/{name}/sync.
func (c *Client) SyncUser(ctx context.Context, name string) (api.UserSync, error) {
	var out api.UserSync
	err := c.Do(ctx, "POST", userPath(name, "sync"), nil, &out)
	return out, err
}

// SSODevice starts a device login (no browser on this machine):
// POST /api/v1/sso/cli/device.
func (c *Client) SSODevice(ctx context.Context) (api.SSODeviceStart, error) {
	var out api.SSODeviceStart
	err := c.Do(ctx, "POST", "/api/v1/sso/cli/device", struct{}{}, &out)
	return out, err
}

// SSODevicePoll waits a while for the person to finish at the provider:
// POST /api/v1/sso/cli/device/poll.
func (c *Client) SSODevicePoll(ctx context.Context, handle string) (api.SSODevicePoll, error) {
	var out api.SSODevicePoll
	err := c.Do(ctx, "POST", "/api/v1/sso/cli/device/poll", api.SSODevicePollRequest{Handle: handle}, &out)
	return out, err
}
