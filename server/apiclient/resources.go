package apiclient

import (
	"context"
	"net/url"

	"github.com/pamd/pamd/server/api"
)

// ResourceCheck is one result of TestResource: reach, or one account's login.
type ResourceCheck struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Kinds describes the resource types the server serves and their fields:
// GET /api/v1/kinds.
func (c *Client) Kinds(ctx context.Context) ([]api.Kind, error) {
	var out []api.Kind
	err := c.Do(ctx, "GET", "/api/v1/kinds", nil, &out)
	return out, err
}

// Resources lists the resources: GET /api/v1/resources.
func (c *Client) Resources(ctx context.Context) ([]api.Resource, error) {
	var out []api.Resource
	err := c.Do(ctx, "GET", "/api/v1/resources", nil, &out)
	return out, err
}

// Resource fetches one resource with its accounts: GET /api/v1/resources/{name}.
func (c *Client) Resource(ctx context.Context, name string) (api.Resource, error) {
	var out api.Resource
	err := c.Do(ctx, "GET", resourcePath(name), nil, &out)
	return out, err
}

// CreateResource adds a resource: POST /api/v1/resources.
func (c *Client) CreateResource(ctx context.Context, req api.Resource) (api.Resource, error) {
	var out api.Resource
	err := c.Do(ctx, "POST", "/api/v1/resources", req, &out)
	return out, err
}

// UpdateResource changes what req sets: PATCH /api/v1/resources/{name}.
func (c *Client) UpdateResource(ctx context.Context, name string, req api.ResourceUpdate) (api.Resource, error) {
	var out api.Resource
	err := c.Do(ctx, "PATCH", resourcePath(name), req, &out)
	return out, err
}

// DeleteResource removes a resource and its accounts: DELETE /api/v1/resources/{name}.
func (c *Client) DeleteResource(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", resourcePath(name), nil, nil)
}

// TestResource checks through the gateway that a resource answers and its
// accounts log in: POST /api/v1/resources/{name}/test.
func (c *Client) TestResource(ctx context.Context, name string) ([]ResourceCheck, error) {
	var out []ResourceCheck
	err := c.Do(ctx, "POST", resourcePath(name)+"/test", nil, &out)
	return out, err
}

// TrustHostKey re-pins an ssh resource's host key: POST /api/v1/resources/{name}/trust-host-key.
func (c *Client) TrustHostKey(ctx context.Context, name string) (api.Resource, error) {
	var out api.Resource
	err := c.Do(ctx, "POST", resourcePath(name)+"/trust-host-key", nil, &out)
	return out, err
}

// SSHCAPublicKey returns an ssh resource's user CA key in authorized_keys
// form: GET /api/v1/resources/ssh/{id}/ssh-ca-public-key (id, not name).
func (c *Client) SSHCAPublicKey(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, "GET", "/api/v1/resources/ssh/"+url.PathEscape(id)+"/ssh-ca-public-key", nil, &out)
	return out, err
}

// SSHCASetupScript returns the bash script that makes sshd trust the
// resource's CA: GET /api/v1/resources/ssh/{id}/ssh-ca-setup.
func (c *Client) SSHCASetupScript(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, "GET", "/api/v1/resources/ssh/"+url.PathEscape(id)+"/ssh-ca-setup", nil, &out)
	return out, err
}

// Accounts lists a resource's accounts: GET /api/v1/resources/{name}/accounts.
func (c *Client) Accounts(ctx context.Context, resource string) ([]api.Account, error) {
	var out []api.Account
	err := c.Do(ctx, "GET", resourcePath(resource)+"/accounts", nil, &out)
	return out, err
}

// CreateAccount adds an account: POST /api/v1/resources/{name}/accounts.
func (c *Client) CreateAccount(ctx context.Context, resource string, req api.CreateAccountRequest) (api.Account, error) {
	var out api.Account
	err := c.Do(ctx, "POST", resourcePath(resource)+"/accounts", req, &out)
	return out, err
}

// UpdateAccount changes what req sets:
// PATCH /api/v1/resources/{name}/accounts/{account}.
func (c *Client) UpdateAccount(ctx context.Context, resource, account string, req api.AccountUpdate) error {
	return c.Do(ctx, "PATCH", accountPath(resource, account), req, nil)
}

// DeleteAccount removes an account: DELETE /api/v1/resources/{name}/accounts/{account}.
func (c *Client) DeleteAccount(ctx context.Context, resource, account string) error {
	return c.Do(ctx, "DELETE", accountPath(resource, account), nil, nil)
}

// RotateAccount changes the account's credential on the target now:
// POST /api/v1/resources/{name}/accounts/{account}/rotate.
func (c *Client) RotateAccount(ctx context.Context, resource, account string) (api.RotateResult, error) {
	var out api.RotateResult
	err := c.Do(ctx, "POST", accountPath(resource, account)+"/rotate", nil, &out)
	return out, err
}

func resourcePath(name string) string { return "/api/v1/resources/" + url.PathEscape(name) }

func accountPath(resource, account string) string {
	return resourcePath(resource) + "/accounts/" + url.PathEscape(account)
}
