// Package requests owns just-in-time access requests: a user whose role
// has request patterns (store.Role.Request) asks for one resource/account
// for a while, with a reason; holders of the role's approver roles
// approve (as many distinct ones as the role wants, never the requester)
// or deny; an approved request is a grant with a deadline that pamd
// connect and pamd ssh use like a standing one, and its sessions end when
// it does (at its end, or when it is revoked or cancelled). A request not
// approved in time expires.
//
// Approvers: the holders of the roles a role names with --approvers; a
// role that names none is approved by admins. Admins are not approvers of
// roles that name others (four eyes stay four eyes), but they may deny any
// request and revoke any grant.
//
// Files: state.go (the state machine: pure transitions on store.Request,
// unit-tested), service.go (Service: creating, reviewing, cancelling and
// revoking in the store with their audit events, the grant a session
// uses, the sweep that expires and ends requests, ending their sessions),
// webhook.go (telling approvers of a new request: a JSON POST with a
// Slack-compatible text field, retried, never in the request's way).
package requests
