package requests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

// Config is what the service needs of the server.
type Config struct {
	Store    *store.Store
	Log      *slog.Logger
	Sessions *sessions.Live
	// Webhook is the URL approvers are told of new requests at (empty:
	// none). It may hold a secret (a Slack webhook does): it is never
	// logged.
	Webhook string
}

// Service keeps access requests: it changes them in the store with their
// audit events, and its Run expires and ends them on time.
type Service struct {
	st   *store.Store
	log  *slog.Logger
	live *sessions.Live
	hook *webhook
	poke chan struct{}
}

// New is the service; Run must run for requests to expire on time.
func New(cfg Config) *Service {
	return &Service{st: cfg.Store, log: cfg.Log, live: cfg.Sessions, hook: newWebhook(cfg.Webhook, cfg.Log),
		poke: make(chan struct{}, 1)}
}

// Ask is what a user asks for.
type Ask struct {
	Resource, Account, Reason string
	Duration                  time.Duration // 0: the default, within the role's maximum
}

// Create records a new pending request of u, whose roles are roles, and
// tells approvers. A target that does not exist is refused like one no
// role lets u request, so names do not leak.
func (s *Service) Create(u *store.User, roles []*store.Role, source string, ask Ask) (*store.Request, error) {
	target := audit.Name(ask.Resource) + "/" + audit.Name(ask.Account)
	fail := func(err error) (*store.Request, error) {
		audit.Trail{St: s.st, Log: s.log}.Event(u.Name, "request.create", target, "failure", source, err.Error())
		return nil, err
	}
	q, ok := sessions.RequestableFor(roles, ask.Resource, ask.Account)
	exists := s.st.View(func(tx *store.Tx) error {
		res, err := tx.ResourceByName(ask.Resource)
		if err != nil {
			return err
		}
		_, err = tx.AccountByName(res.ID, ask.Account)
		return err
	}) == nil
	if !ok || !exists {
		return fail(refuse(ErrForbidden, "cannot request %s: it does not exist or none of your roles (%s) lets you request it", target, strings.Join(u.Roles, ", ")))
	}
	reason := strings.TrimSpace(ask.Reason)
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	if q.RequireReason && reason == "" {
		return fail(refuse(ErrInvalid, "a request for %s needs a reason: add --reason", target))
	}
	d := ask.Duration
	switch {
	case d < 0:
		return nil, refuse(ErrInvalid, "duration: want a positive duration such as 30m or 2h")
	case d == 0:
		d = min(sessions.DefaultRequestDuration, q.MaxDuration)
	case d > q.MaxDuration:
		return fail(refuse(ErrInvalid, "duration %s: role %s grants at most %s", d, q.Role, q.MaxDuration))
	}
	now := time.Now().UTC()
	r := &store.Request{ID: store.NewID(), UserID: u.ID, UserName: u.Name, ResourceName: ask.Resource, AccountName: ask.Account,
		Reason: reason, Duration: d, Role: q.Role, Approvers: q.Approvers, Approvals: q.Approvals,
		State: store.RequestPending, CreatedAt: now, ExpiresAt: now.Add(q.TTL)}
	var dup error
	err := s.st.Update(func(tx *store.Tx) error {
		all, err := tx.Requests()
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.UserID == u.ID && Target(o) == Target(r) && Open(o, now) {
				dup = refuse(ErrState, "you already have request %s for %s (%s)", o.ID, target, o.State)
				return nil
			}
		}
		if err := tx.PutRequest(r); err != nil {
			return err
		}
		detail := fmt.Sprintf("request %s for %s; needs %d approval(s) from %s; expires %s", r.ID, d, r.Approvals,
			strings.Join(r.Approvers, " or "), r.ExpiresAt.Format(time.RFC3339))
		if reason != "" {
			detail += "; reason: " + reason
		}
		return audit.Append(tx, u.Name, "request.create", target, "success", source, detail)
	})
	if err != nil {
		return nil, err
	}
	if dup != nil {
		return fail(dup)
	}
	s.Poke()
	s.hook.notify(r)
	return r, nil
}

// Visible says whether who may see the request: its requester, its
// approvers, and admins and auditors (reader).
func Visible(r *store.Request, who Reviewer, reader bool) bool {
	return reader || who.ID == r.UserID || IsApprover(r, who)
}

// Get is one request as who sees it, settled to now.
func (s *Service) Get(id string, who Reviewer, reader bool) (*store.Request, error) {
	var r *store.Request
	err := s.st.View(func(tx *store.Tx) (err error) { r, err = tx.Request(id); return err })
	if errors.Is(err, store.ErrNotFound) || (err == nil && !Visible(r, who, reader)) {
		return nil, refuse(ErrNotFound, "no request %q", id)
	}
	if err != nil {
		return nil, err
	}
	Settle(r, time.Now())
	return r, nil
}

// List is the requests who sees, newest first, settled to now; pending
// keeps those still waiting for approvals.
func (s *Service) List(who Reviewer, reader, pending bool) ([]*store.Request, error) {
	var all []*store.Request
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.Requests(); return err }); err != nil {
		return nil, err
	}
	now := time.Now()
	out := []*store.Request{}
	for _, r := range all {
		Settle(r, now)
		if Visible(r, who, reader) && (!pending || r.State == store.RequestPending) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// Approve records who's approval; with the last one needed the grant starts.
func (s *Service) Approve(id string, who Reviewer, source, reason string) (*store.Request, error) {
	r, err := s.act(id, who, source, "request.approve", func(r *store.Request, now time.Time) (string, error) {
		granted, err := Approve(r, who, reason, now)
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("%s for %s: approval %d of %d", Target(r), r.UserName, Approvals(r), r.Approvals)
		if granted {
			detail += "; granted until " + r.GrantEnds.Format(time.RFC3339)
		}
		if reason = strings.TrimSpace(reason); reason != "" {
			detail += "; reason: " + reason
		}
		return detail, nil
	})
	if err == nil {
		s.Poke()
	}
	return r, err
}

// Deny closes a pending request with who's reason.
func (s *Service) Deny(id string, who Reviewer, source, reason string) (*store.Request, error) {
	return s.act(id, who, source, "request.deny", func(r *store.Request, now time.Time) (string, error) {
		if err := Deny(r, who, reason, now); err != nil {
			return "", err
		}
		return Target(r) + " for " + r.UserName + "; reason: " + r.CloseReason, nil
	})
}

// Cancel is the requester withdrawing a request; the sessions of a live
// grant end.
func (s *Service) Cancel(ctx context.Context, id string, who Reviewer, source string) (*store.Request, int, error) {
	r, err := s.act(id, who, source, "request.cancel", func(r *store.Request, now time.Time) (string, error) {
		return Target(r), Cancel(r, who, now)
	})
	if err != nil {
		return nil, 0, err
	}
	return r, s.endSessions(ctx, r.ID, "access request "+r.ID+" cancelled by "+who.Name, who.Name), nil
}

// Revoke ends a live grant now, and its sessions.
func (s *Service) Revoke(ctx context.Context, id string, who Reviewer, source, reason string) (*store.Request, int, error) {
	r, err := s.act(id, who, source, "request.revoke", func(r *store.Request, now time.Time) (string, error) {
		if err := Revoke(r, who, reason, now); err != nil {
			return "", err
		}
		return Target(r) + " for " + r.UserName + "; reason: " + r.CloseReason, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return r, s.endSessions(ctx, r.ID, "access request "+r.ID+" revoked by "+who.Name, who.Name), nil
}

// act changes one request in a transaction: a request found past its time
// is settled (and audited) first; fn's refusal is audited as a failure,
// its change as a success with fn's detail.
func (s *Service) act(id string, who Reviewer, source, action string, fn func(*store.Request, time.Time) (string, error)) (*store.Request, error) {
	var r *store.Request
	var refusal error
	now := time.Now()
	err := s.st.Update(func(tx *store.Tx) (err error) {
		r, err = tx.Request(id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !Visible(r, who, who.Admin)) {
			refusal = refuse(ErrNotFound, "no request %q", id)
			return audit.Append(tx, who.Name, action, audit.Name(id), "failure", source, refusal.Error())
		}
		if err != nil {
			return err
		}
		if Settle(r, now) {
			if err := s.putSettled(tx, r); err != nil {
				return err
			}
		}
		detail, err := fn(r, now)
		if err != nil {
			refusal = err
			return audit.Append(tx, who.Name, action, r.ID, "failure", source, err.Error())
		}
		if err := tx.PutRequest(r); err != nil {
			return err
		}
		return audit.Append(tx, who.Name, action, r.ID, "success", source, detail)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return r, nil
}

// putSettled stores a request Settle moved on, with its audit event.
func (s *Service) putSettled(tx *store.Tx, r *store.Request) error {
	if err := tx.PutRequest(r); err != nil {
		return err
	}
	action := "request.expire"
	if r.State == store.RequestEnded {
		action = "request.end"
	}
	return audit.Append(tx, "system", action, r.ID, "success", "", Target(r)+" for "+r.UserName+": "+r.CloseReason)
}

// ForSession is the live grant of an approved request of user for
// resource/account (the one lasting longest), or, failing that, an open
// pending one, for the refusal's words.
func (s *Service) ForSession(userID, resource, account string) (grant, pending *store.Request, err error) {
	var all []*store.Request
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.Requests(); return err }); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	for _, r := range all {
		if r.UserID != userID || r.ResourceName != resource || r.AccountName != account {
			continue
		}
		switch {
		case Live(r, now) && (grant == nil || r.GrantEnds.After(grant.GrantEnds)):
			grant = r
		case Open(r, now) && r.State == store.RequestPending:
			pending = r
		}
	}
	return grant, pending, nil
}

// NoteUse records in tx that session sess opens under request id: the
// request must still grant (a revocation may have come in between).
func NoteUse(tx *store.Tx, id string, sess *store.Session, source string) error {
	r, err := tx.Request(id)
	if err != nil {
		return err
	}
	if !Live(r, time.Now()) {
		return refuse(ErrNotGrant, "access request %s no longer grants %s (%s)", id, Target(r), r.State)
	}
	r.Uses++
	if err := tx.PutRequest(r); err != nil {
		return err
	}
	return audit.Append(tx, sess.UserName, "request.use", r.ID, "success", source,
		"session "+sess.ID+" on "+Target(r)+" until "+sess.ExpiresAt.Format(time.RFC3339))
}

// endSessions ends the live sessions opened under request id.
func (s *Service) endSessions(ctx context.Context, id, reason, actor string) int {
	var ids []string
	now := time.Now()
	s.st.View(func(tx *store.Tx) error {
		all, err := tx.Sessions()
		for _, sess := range all {
			if sess.RequestID == id && sess.Active(now) {
				ids = append(ids, sess.ID)
			}
		}
		return err
	})
	for _, sid := range ids {
		s.live.End(ctx, sid, reason, actor)
	}
	return len(ids)
}

// Poke has Run look at the requests again now (a new deadline).
func (s *Service) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run expires pending requests and ends grants on time until ctx ends,
// then waits for the webhook deliveries under way.
func (s *Service) Run(ctx context.Context) {
	defer s.hook.stop()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.poke:
		}
		wait := time.Minute
		if next := s.sweep(ctx); !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		t.Reset(wait)
	}
}

// sweep settles the requests whose time has come, ends the sessions of
// grants that ended, and says when the next open request's time comes.
func (s *Service) sweep(ctx context.Context) (next time.Time) {
	var ended []*store.Request
	now := time.Now()
	err := s.st.Update(func(tx *store.Tx) error {
		all, err := tx.Requests()
		if err != nil {
			return err
		}
		for _, r := range all {
			if Settle(r, now) {
				if err := s.putSettled(tx, r); err != nil {
					return err
				}
				if r.State == store.RequestEnded {
					ended = append(ended, r)
				}
				continue
			}
			due := r.ExpiresAt
			if r.State == store.RequestApproved {
				due = r.GrantEnds
			}
			if (r.State == store.RequestPending || r.State == store.RequestApproved) && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("access requests: sweep", "err", err)
		return now.Add(5 * time.Second)
	}
	for _, r := range ended {
		s.endSessions(ctx, r.ID, "access request "+r.ID+" ended", "system")
	}
	return next
}

// LiveGrants is the end of each live grant of user, by RESOURCE/ACCOUNT.
func (s *Service) LiveGrants(userID string) (map[string]time.Time, error) {
	var all []*store.Request
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.Requests(); return err }); err != nil {
		return nil, err
	}
	now := time.Now()
	out := map[string]time.Time{}
	for _, r := range all {
		if r.UserID == userID && Live(r, now) && r.GrantEnds.After(out[Target(r)]) {
			out[Target(r)] = r.GrantEnds
		}
	}
	return out, nil
}
