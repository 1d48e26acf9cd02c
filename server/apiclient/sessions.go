package apiclient

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pamd/pamd/server/api"
)

// Catalog lists the resources and accounts the user may access: GET /api/v1/catalog.
func (c *Client) Catalog(ctx context.Context) ([]api.CatalogEntry, error) {
	var out []api.CatalogEntry
	err := c.Do(ctx, "GET", "/api/v1/catalog", nil, &out)
	return out, err
}

// CreateSession opens an access session: POST /api/v1/sessions. An
// account that needs an MFA code answers *api.Error with Code
// api.CodeMFARequired when req has none.
func (c *Client) CreateSession(ctx context.Context, req api.CreateSessionRequest) (api.SessionGrant, error) {
	var out api.SessionGrant
	err := c.Do(ctx, "POST", "/api/v1/sessions", req, &out)
	return out, err
}

// Sessions lists sessions (the user's, or all for admins and auditors),
// only the live ones when activeOnly: GET /api/v1/sessions[?active=true].
func (c *Client) Sessions(ctx context.Context, activeOnly bool) ([]api.Session, error) {
	path := "/api/v1/sessions"
	if activeOnly {
		path += "?active=true"
	}
	var out []api.Session
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// Session fetches one session with its connections: GET /api/v1/sessions/{id}.
func (c *Client) Session(ctx context.Context, id string) (api.Session, error) {
	var out api.Session
	err := c.Do(ctx, "GET", sessionPath(id), nil, &out)
	return out, err
}

// TerminateSession ends a live session: POST /api/v1/sessions/{id}/terminate.
func (c *Client) TerminateSession(ctx context.Context, id string) error {
	return c.Do(ctx, "POST", sessionPath(id)+"/terminate", nil, nil)
}

// SessionRecords returns what a session recorded, each record with the
// one-line summary its resource's kind renders: GET /api/v1/sessions/{id}/records.
func (c *Client) SessionRecords(ctx context.Context, id string) ([]api.Record, error) {
	var out []api.Record
	err := c.Do(ctx, "GET", sessionPath(id)+"/records", nil, &out)
	return out, err
}

// SessionAsciicast returns a session's terminal recording as asciicast v2:
// GET /api/v1/sessions/{id}/asciicast.
func (c *Client) SessionAsciicast(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, "GET", sessionPath(id)+"/asciicast", nil, &out)
	return out, err
}

func sessionPath(id string) string { return "/api/v1/sessions/" + url.PathEscape(id) }

// AuditQuery selects audit events; zero fields select everything (Limit
// zero is the server's default).
type AuditQuery struct {
	Since  time.Duration // only events newer than this
	User   string        // only events by this actor
	Action string        // only this action, or a family such as session
	Limit  int           // at most this many, the newest
}

// AuditEvents lists audit events, oldest first: GET /api/v1/audit?...
// (which answers the newest first, a page at a time: this is its first).
func (c *Client) AuditEvents(ctx context.Context, q AuditQuery) ([]api.AuditEvent, error) {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []api.AuditEvent
	err := c.Do(ctx, "GET", path, nil, &out)
	slices.Reverse(out)
	return out, err
}

// VerifyAudit checks the audit hash chain: GET /api/v1/audit/verify.
// VerifyAudit checks the chain; expect (SEQ:HASH or HASH, may be "") is a
// head kept outside pamd that the chain must hold.
func (c *Client) VerifyAudit(ctx context.Context, expect string) (api.AuditVerify, error) {
	var out api.AuditVerify
	path := "/api/v1/audit/verify"
	if expect != "" {
		path += "?" + url.Values{"expect": {expect}}.Encode()
	}
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// AuditHead is the newest audit event's sequence number and hash.
func (c *Client) AuditHead(ctx context.Context) (api.AuditHead, error) {
	var out api.AuditHead
	err := c.Do(ctx, "GET", "/api/v1/audit/head", nil, &out)
	return out, err
}
