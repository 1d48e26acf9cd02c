package api

import "time"

// AccessRequest is a just-in-time access request as the API shows it.
type AccessRequest struct {
	ID       string `json:"id"`
	User     string `json:"user"`
	Resource string `json:"resource"`
	Account  string `json:"account"`
	Reason   string `json:"reason,omitempty"`
	Duration string `json:"duration"`
	Role     string `json:"role"`
	// Approvers are the roles whose holders approve; ApprovalsNeeded how
	// many distinct ones must, Approvals how many did.
	Approvers       []string  `json:"approvers"`
	ApprovalsNeeded int       `json:"approvals_needed"`
	Approvals       int       `json:"approvals"`
	State           string    `json:"state"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	ApprovedAt      time.Time `json:"approved_at,omitzero"`
	GrantEnds       time.Time `json:"grant_ends,omitzero"`
	ClosedAt        time.Time `json:"closed_at,omitzero"`
	ClosedBy        string    `json:"closed_by,omitempty"`
	CloseReason     string    `json:"close_reason,omitempty"`
	Reviews         []Review  `json:"reviews"`
	Uses            int       `json:"uses"`
	// CanReview says whether the caller may approve it now.
	CanReview bool `json:"can_review"`
}

// Review is one approver's decision on a request.
type Review struct {
	User    string    `json:"user"`
	Verdict string    `json:"verdict"` // approve or deny
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// CreateAccessRequest asks for RESOURCE/ACCOUNT; Duration is how long
// the grant should last once approved (empty: an hour, within the role's
// maximum).
type CreateAccessRequest struct {
	Resource string `json:"resource"`
	Account  string `json:"account"`
	Reason   string `json:"reason,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// ReviewAccessRequest is the reason of an approval, denial or revocation.
type ReviewAccessRequest struct {
	Reason string `json:"reason,omitempty"`
}

// AccessRequestChange is a request after a cancel or revoke, and how many
// of its sessions ended.
type AccessRequestChange struct {
	Request       AccessRequest `json:"request"`
	SessionsEnded int           `json:"sessions_ended"`
}
