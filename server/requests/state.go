package requests

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pamd/pamd/store"
)

// The kinds of refusal, for the API's status codes.
var (
	ErrInvalid   = errors.New("invalid request")     // bad input: 400
	ErrForbidden = errors.New("not allowed")         // the caller may not: 403
	ErrState     = errors.New("not in that state")   // too late or too early: 409
	ErrNotFound  = errors.New("no such request")     // or one the caller may not see: 404
	ErrNotGrant  = errors.New("no approved request") // no live grant for a session
)

// refusal is a kind of refusal with the words a user reads.
type refusal struct {
	kind error
	msg  string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// MaxReason is the longest reason, for requests and reviews.
const MaxReason = 1024

// Reviewer is a user acting on someone's request.
type Reviewer struct {
	ID, Name string
	Roles    []string // the roles the user holds
	Admin    bool
}

// Target is a request's RESOURCE/ACCOUNT.
func Target(r *store.Request) string { return r.ResourceName + "/" + r.AccountName }

// Settle moves a request whose time has passed to its final state: a
// pending one past ExpiresAt to expired, an approved one past GrantEnds
// to ended. It says whether it changed anything.
func Settle(r *store.Request, now time.Time) bool {
	switch {
	case r.State == store.RequestPending && !now.Before(r.ExpiresAt):
		closeAs(r, store.RequestExpired, "system", "not approved in time", r.ExpiresAt)
	case r.State == store.RequestApproved && !now.Before(r.GrantEnds):
		closeAs(r, store.RequestEnded, "system", "the grant's time is over", r.GrantEnds)
	default:
		return false
	}
	return true
}

func closeAs(r *store.Request, state, by, reason string, at time.Time) {
	r.State, r.ClosedBy, r.CloseReason, r.ClosedAt = state, by, reason, at.UTC()
}

// Live says whether the request grants access at now.
func Live(r *store.Request, now time.Time) bool {
	return r.State == store.RequestApproved && now.Before(r.GrantEnds)
}

// Open says whether the request still waits or grants at now.
func Open(r *store.Request, now time.Time) bool {
	return (r.State == store.RequestPending && now.Before(r.ExpiresAt)) || Live(r, now)
}

// IsApprover says whether who holds one of the request's approver roles.
func IsApprover(r *store.Request, who Reviewer) bool {
	return slices.ContainsFunc(who.Roles, func(role string) bool { return slices.Contains(r.Approvers, role) })
}

// CanReview says whether who may approve the request (or deny it as an
// approver): an approver who is not the requester and has not reviewed it.
func CanReview(r *store.Request, who Reviewer) bool {
	return who.ID != r.UserID && IsApprover(r, who) && !reviewed(r, who.ID)
}

func reviewed(r *store.Request, userID string) bool {
	return slices.ContainsFunc(r.Reviews, func(v store.Review) bool { return v.UserID == userID })
}

// Approvals counts the approvals given so far.
func Approvals(r *store.Request) int {
	n := 0
	for _, v := range r.Reviews {
		if v.Approve {
			n++
		}
	}
	return n
}

func checkReason(reason string) error {
	if len(reason) > MaxReason {
		return refuse(ErrInvalid, "reason: at most %d characters", MaxReason)
	}
	return nil
}

// pendingOnly refuses a request that no longer waits for reviews.
func pendingOnly(r *store.Request, now time.Time, doing string) error {
	Settle(r, now)
	if r.State != store.RequestPending {
		return refuse(ErrState, "request %s is %s: it can no longer be %s", r.ID, r.State, doing)
	}
	return nil
}

// Approve adds who's approval; the request is approved (granted from now
// for its duration) with the last approval it needs, which Approve
// reports. Nobody approves their own request, nor twice.
func Approve(r *store.Request, who Reviewer, reason string, now time.Time) (granted bool, err error) {
	reason = strings.TrimSpace(reason)
	if err := checkReason(reason); err != nil {
		return false, err
	}
	if err := pendingOnly(r, now, "approved"); err != nil {
		return false, err
	}
	switch {
	case who.ID == r.UserID:
		return false, refuse(ErrForbidden, "you cannot approve your own request: someone holding %s must", strings.Join(r.Approvers, " or "))
	case !IsApprover(r, who):
		return false, refuse(ErrForbidden, "you cannot approve request %s: its approvers hold %s", r.ID, strings.Join(r.Approvers, " or "))
	case reviewed(r, who.ID):
		return false, refuse(ErrState, "you already reviewed request %s: it needs another approver", r.ID)
	}
	r.Reviews = append(r.Reviews, store.Review{UserID: who.ID, UserName: who.Name, Approve: true, Reason: reason, At: now.UTC()})
	if Approvals(r) < r.Approvals {
		return false, nil
	}
	r.State, r.ApprovedAt, r.GrantEnds = store.RequestApproved, now.UTC(), now.Add(r.Duration).UTC()
	return true, nil
}

// Deny closes a pending request; the reason is required. Approvers and
// admins deny; the requester cancels instead.
func Deny(r *store.Request, who Reviewer, reason string, now time.Time) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return refuse(ErrInvalid, "a denial needs a reason: add --reason")
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	if err := pendingOnly(r, now, "denied"); err != nil {
		return err
	}
	switch {
	case who.ID == r.UserID:
		return refuse(ErrForbidden, "you cannot deny your own request: cancel it instead (pamd requests cancel %s)", r.ID)
	case !IsApprover(r, who) && !who.Admin:
		return refuse(ErrForbidden, "you cannot deny request %s: its approvers hold %s", r.ID, strings.Join(r.Approvers, " or "))
	}
	r.Reviews = append(r.Reviews, store.Review{UserID: who.ID, UserName: who.Name, Reason: reason, At: now.UTC()})
	closeAs(r, store.RequestDenied, who.Name, reason, now)
	return nil
}

// Cancel is the requester withdrawing a pending request or giving up a
// live grant.
func Cancel(r *store.Request, who Reviewer, now time.Time) error {
	if who.ID != r.UserID {
		return refuse(ErrForbidden, "only %s, who made request %s, can cancel it", r.UserName, r.ID)
	}
	Settle(r, now)
	if r.State != store.RequestPending && r.State != store.RequestApproved {
		return refuse(ErrState, "request %s is %s: there is nothing to cancel", r.ID, r.State)
	}
	closeAs(r, store.RequestCancelled, who.Name, "cancelled by the requester", now)
	return nil
}

// Revoke ends a live grant before its time (the API lets only admins).
func Revoke(r *store.Request, who Reviewer, reason string, now time.Time) error {
	reason = strings.TrimSpace(reason)
	if err := checkReason(reason); err != nil {
		return err
	}
	Settle(r, now)
	if r.State != store.RequestApproved {
		if r.State == store.RequestPending {
			return refuse(ErrState, "request %s is pending: deny it instead (pamd requests deny %s --reason ...)", r.ID, r.ID)
		}
		return refuse(ErrState, "request %s is %s: there is no grant to revoke", r.ID, r.State)
	}
	closeAs(r, store.RequestRevoked, who.Name, orDefault(reason, "revoked by "+who.Name), now)
	return nil
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
