package requests

import (
	"errors"
	"testing"
	"time"

	"github.com/pamd/pamd/store"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func pending(approvals int) *store.Request {
	return &store.Request{ID: "r1", UserID: "u-alice", UserName: "alice", ResourceName: "prod-db", AccountName: "root",
		Duration: time.Hour, Approvers: []string{"leads"}, Approvals: approvals, State: store.RequestPending,
		CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
}

var (
	alice = Reviewer{ID: "u-alice", Name: "alice", Roles: []string{"oncall", "leads"}}
	bob   = Reviewer{ID: "u-bob", Name: "bob", Roles: []string{"leads"}}
	carol = Reviewer{ID: "u-carol", Name: "carol", Roles: []string{"leads", "user"}}
	admin = Reviewer{ID: "u-admin", Name: "admin", Roles: []string{"admin"}, Admin: true}
	dave  = Reviewer{ID: "u-dave", Name: "dave", Roles: []string{"user"}}
)

func TestApproveNeedsDistinctApproversNotTheRequester(t *testing.T) {
	r := pending(2)
	if _, err := Approve(r, alice, "", t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := Approve(r, dave, "", t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("approval by a non-approver: %v", err)
	}
	if _, err := Approve(r, admin, "", t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an admin approved a role whose approvers are leads: %v", err)
	}
	granted, err := Approve(r, bob, "ok", t0.Add(time.Minute))
	if err != nil || granted || r.State != store.RequestPending || Approvals(r) != 1 {
		t.Fatalf("first of two approvals: granted %v err %v state %s", granted, err, r.State)
	}
	if _, err := Approve(r, bob, "", t0.Add(2*time.Minute)); !errors.Is(err, ErrState) {
		t.Fatalf("a second approval by the same approver: %v", err)
	}
	if CanReview(r, bob) || !CanReview(r, carol) || CanReview(r, alice) {
		t.Fatal("CanReview")
	}
	at := t0.Add(3 * time.Minute)
	granted, err = Approve(r, carol, "", at)
	if err != nil || !granted || r.State != store.RequestApproved || !r.GrantEnds.Equal(at.Add(time.Hour)) {
		t.Fatalf("second approval: granted %v err %v %+v", granted, err, r)
	}
	if !Live(r, at) || Live(r, r.GrantEnds) {
		t.Fatal("Live around the grant's end")
	}
	if _, err := Approve(r, carol, "", at); !errors.Is(err, ErrState) {
		t.Fatalf("approving an approved request: %v", err)
	}
}

func TestDenyCancelRevoke(t *testing.T) {
	r := pending(1)
	if err := Deny(r, bob, " ", t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a denial without a reason: %v", err)
	}
	if err := Deny(r, alice, "no", t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the requester denied: %v", err)
	}
	if err := Deny(r, dave, "no", t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a stranger denied: %v", err)
	}
	if err := Deny(r, admin, "not during the freeze", t0); err != nil || r.State != store.RequestDenied || r.ClosedBy != "admin" || r.CloseReason != "not during the freeze" {
		t.Fatalf("an admin's denial: %v %+v", err, r)
	}
	if _, err := Approve(r, bob, "", t0); !errors.Is(err, ErrState) {
		t.Fatalf("approving a denied request: %v", err)
	}

	r = pending(1)
	if err := Revoke(r, admin, "", t0); !errors.Is(err, ErrState) {
		t.Fatalf("revoking a pending request: %v", err)
	}
	if err := Cancel(r, bob, t0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("someone else cancelled: %v", err)
	}
	if err := Cancel(r, alice, t0); err != nil || r.State != store.RequestCancelled {
		t.Fatalf("cancel: %v %s", err, r.State)
	}
	if err := Cancel(r, alice, t0); !errors.Is(err, ErrState) {
		t.Fatalf("cancelling twice: %v", err)
	}

	r = pending(1)
	Approve(r, bob, "", t0)
	if err := Revoke(r, admin, "incident over", t0.Add(time.Minute)); err != nil || r.State != store.RequestRevoked || Live(r, t0.Add(time.Minute)) {
		t.Fatalf("revoke: %v %+v", err, r)
	}
	if err := Revoke(r, admin, "", t0.Add(time.Minute)); !errors.Is(err, ErrState) {
		t.Fatalf("revoking twice: %v", err)
	}
}

func TestSettle(t *testing.T) {
	r := pending(1)
	if Settle(r, r.ExpiresAt.Add(-time.Second)) || !Open(r, r.ExpiresAt.Add(-time.Second)) {
		t.Fatal("settled before its time")
	}
	if _, err := Approve(r, bob, "", r.ExpiresAt); !errors.Is(err, ErrState) || r.State != store.RequestExpired || r.ClosedBy != "system" {
		t.Fatalf("approving at the expiry: %v %+v", err, r)
	}
	if Open(r, r.ExpiresAt) {
		t.Fatal("an expired request is open")
	}

	r = pending(1)
	Approve(r, bob, "", t0)
	if Settle(r, r.GrantEnds.Add(-time.Nanosecond)) {
		t.Fatal("a grant ended early")
	}
	if !Settle(r, r.GrantEnds) || r.State != store.RequestEnded || !r.ClosedAt.Equal(r.GrantEnds) {
		t.Fatalf("a grant past its end: %+v", r)
	}
	if err := Cancel(r, alice, r.GrantEnds); !errors.Is(err, ErrState) {
		t.Fatalf("cancelling an ended grant: %v", err)
	}
}

func TestReasonLength(t *testing.T) {
	long := string(make([]byte, MaxReason+1))
	if _, err := Approve(pending(1), bob, long, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a long approval reason: %v", err)
	}
	if err := Deny(pending(1), bob, "x"+long, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a long denial reason: %v", err)
	}
}
