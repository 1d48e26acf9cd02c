package store

import "time"

const bucketRequests = "requests"

// The states of an access request. Pending waits for approvals until its
// ExpiresAt; approved is a grant until GrantEnds, then ended; denied,
// expired, cancelled, revoked and ended are final.
const (
	RequestPending   = "pending"
	RequestApproved  = "approved"
	RequestDenied    = "denied"
	RequestExpired   = "expired"
	RequestCancelled = "cancelled"
	RequestRevoked   = "revoked"
	RequestEnded     = "ended"
)

// Request is a just-in-time access request: a user asks for one
// resource/account for a while, with a reason, and approvers decide. What
// the requesting role asked of approvers is copied in when it is made.
type Request struct {
	ID           string        `json:"id"`
	UserID       string        `json:"user_id"`
	UserName     string        `json:"user_name"`
	ResourceName string        `json:"resource_name"`
	AccountName  string        `json:"account_name"`
	Reason       string        `json:"reason,omitempty"`
	Duration     time.Duration `json:"duration"`
	// Role is the role whose request patterns allow it; Approvers the roles
	// whose holders approve it, and Approvals how many distinct ones must.
	Role      string    `json:"role"`
	Approvers []string  `json:"approvers"`
	Approvals int       `json:"approvals"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // a pending request expires then
	Reviews   []Review  `json:"reviews,omitempty"`
	// ApprovedAt is the last approval needed; the grant lasts until GrantEnds.
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	GrantEnds  time.Time `json:"grant_ends,omitzero"`
	// ClosedAt, ClosedBy and CloseReason say who (or "system") moved it to
	// a final state, and why.
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	ClosedBy    string    `json:"closed_by,omitempty"`
	CloseReason string    `json:"close_reason,omitempty"`
	// Uses counts the sessions opened under the grant.
	Uses int `json:"uses,omitempty"`
}

// Review is one approver's approval or denial.
type Review struct {
	UserID   string    `json:"user_id"`
	UserName string    `json:"user_name"`
	Approve  bool      `json:"approve"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// Access requests, keyed by id.

func (t *Tx) PutRequest(r *Request) error { return put(t, bucketRequests, []byte(r.ID), r) }
func (t *Tx) Request(id string) (*Request, error) {
	return get[Request](t, bucketRequests, []byte(id))
}
func (t *Tx) Requests() ([]*Request, error) { return list[Request](t, bucketRequests, nil) }
