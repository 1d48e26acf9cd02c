package requests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

type noNotices struct{}

func (noNotices) Notice(context.Context, *store.Resource, string, string, time.Duration) {}

// syncBuffer is a log the service's goroutines write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	st          *store.Store
	svc         *Service
	alice, bob  *store.User
	roles       []*store.Role
	log         *syncBuffer
	stop        func()
	resourceRow *store.Resource
}

func newFixture(t *testing.T, hook string, role *store.Role) *fixture {
	st := storetest.Open(t)
	f := &fixture{st: st, log: &syncBuffer{}, roles: []*store.Role{role},
		alice: &store.User{ID: "u-alice", Name: "alice", Roles: []string{role.Name}},
		bob:   &store.User{ID: "u-bob", Name: "bob", Roles: []string{"leads"}}}
	log := slog.New(slog.NewTextHandler(f.log, nil))
	err := st.Update(func(tx *store.Tx) error {
		f.resourceRow = &store.Resource{ID: "res1", Name: "prod-db", Type: "tcp", Gateway: "gw"}
		if err := tx.CreateResource(f.resourceRow); err != nil {
			return err
		}
		return tx.CreateAccount(&store.Account{ID: "acct1", ResourceID: "res1", Name: "root"})
	})
	if err != nil {
		t.Fatal(err)
	}
	live := sessions.New(st, log, noNotices{})
	f.svc = New(Config{Store: st, Log: log, Sessions: live, Webhook: hook})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); f.svc.Run(ctx) }()
	go func() { defer wg.Done(); live.Run(ctx) }()
	f.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) actions(t *testing.T) []string {
	var out []string
	f.st.View(func(tx *store.Tx) error {
		return tx.AuditEvents(func(e *store.AuditEvent) bool {
			if strings.HasPrefix(e.Action, "request.") {
				out = append(out, e.Action+" "+e.Outcome+" "+e.Actor)
			}
			return true
		})
	})
	return out
}

func TestServiceCreateExpireAndAudit(t *testing.T) {
	role := &store.Role{Name: "oncall", Request: []string{"prod-*/*"}, Approvers: []string{"leads"}, MaxDuration: time.Hour, RequestTTL: 300 * time.Millisecond}
	f := newFixture(t, "", role)
	if _, err := f.svc.Create(f.alice, f.roles, "10.0.0.1", Ask{Resource: "prod-db", Account: "nobody", Reason: "x"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a request for an account that does not exist: %v", err)
	}
	if _, err := f.svc.Create(f.alice, f.roles, "10.0.0.1", Ask{Resource: "prod-db", Account: "root", Duration: 2 * time.Hour}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a request longer than the role's maximum: %v", err)
	}
	r, err := f.svc.Create(f.alice, f.roles, "10.0.0.1", Ask{Resource: "prod-db", Account: "root", Reason: "INC-1"})
	if err != nil || r.Duration != time.Hour || r.Approvals != 1 || r.State != store.RequestPending {
		t.Fatalf("create: %+v %v", r, err)
	}
	if _, err := f.svc.Create(f.alice, f.roles, "10.0.0.1", Ask{Resource: "prod-db", Account: "root"}); !errors.Is(err, ErrState) {
		t.Fatalf("a second open request for the same target: %v", err)
	}
	// Bob sees it (he approves), Dave does not.
	if _, err := f.svc.Get(r.ID, Reviewer{ID: "u-dave", Roles: []string{"user"}}, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a stranger saw the request: %v", err)
	}
	if list, err := f.svc.List(Reviewer{ID: f.bob.ID, Roles: f.bob.Roles}, false, true); err != nil || len(list) != 1 {
		t.Fatalf("bob's pending list: %v %v", list, err)
	}
	// The sweep expires it on time, with nobody asking.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got *store.Request
		f.st.View(func(tx *store.Tx) (err error) { got, err = tx.Request(r.ID); return })
		if got.State == store.RequestExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request did not expire: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.svc.Approve(r.ID, Reviewer{ID: f.bob.ID, Name: "bob", Roles: f.bob.Roles}, "", ""); !errors.Is(err, ErrState) {
		t.Fatalf("approving an expired request: %v", err)
	}
	want := []string{"request.create failure alice", "request.create failure alice", "request.create success alice",
		"request.create failure alice", "request.expire success system", "request.approve failure bob"}
	if got := f.actions(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWebhookRetriesAndNeverBlocks(t *testing.T) {
	var calls atomic.Int32
	got := make(chan webhookBody, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var b webhookBody
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &b)
		got <- b
	}))
	defer srv.Close()
	hookURL := srv.URL + "/hooks/T000/SECRETPART"
	role := &store.Role{Name: "oncall", Request: []string{"prod-*/*"}, Approvers: []string{"leads"}, Approvals: 2, MaxDuration: time.Hour}
	f := newFixture(t, hookURL, role)
	f.svc.hook.backoff = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
	r, err := f.svc.Create(f.alice, f.roles, "", Ask{Resource: "prod-db", Account: "root", Reason: "INC-7", Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !strings.Contains(b.Text, "alice asks for prod-db/root for 30m0s") || !strings.Contains(b.Text, "INC-7") ||
			!strings.Contains(b.Text, "pamd requests approve "+r.ID) || b.Request.ID != r.ID || b.Request.Approvals != 2 {
			t.Fatalf("webhook body: %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no webhook delivery after %d calls", calls.Load())
	}
	f.stop()
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 2 failures and a success", calls.Load())
	}
	if strings.Contains(f.log.String(), "SECRETPART") {
		t.Fatalf("the webhook URL was logged:\n%s", f.log.String())
	}
	if !strings.Contains(f.log.String(), "retrying") {
		t.Fatalf("the retries were not logged:\n%s", f.log.String())
	}

	// A hook that never answers does not hold up the next request, and the
	// shutdown does not wait for it.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	f2 := newFixture(t, hang.URL, role)
	start := time.Now()
	if _, err := f2.svc.Create(f2.alice, f2.roles, "", Ask{Resource: "prod-db", Account: "root", Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("create waited %s for the webhook", d)
	}
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	f2.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the shutdown waited %s for the webhook", d)
	}
}

// A revocation ends the sessions opened under the grant, and a session
// being opened as it happens is refused in its own transaction.
func TestRevokeEndsSessionsAndRefusesNewUse(t *testing.T) {
	role := &store.Role{Name: "oncall", Request: []string{"prod-*/*"}, Approvers: []string{"leads"}, MaxDuration: time.Hour}
	f := newFixture(t, "", role)
	r, err := f.svc.Create(f.alice, f.roles, "", Ask{Resource: "prod-db", Account: "root", Reason: "INC-3"})
	if err != nil {
		t.Fatal(err)
	}
	bob := Reviewer{ID: f.bob.ID, Name: "bob", Roles: f.bob.Roles}
	if r, err = f.svc.Approve(r.ID, bob, "", ""); err != nil || r.State != store.RequestApproved {
		t.Fatalf("approve: %v %+v", err, r)
	}
	grant, _, err := f.svc.ForSession(f.alice.ID, "prod-db", "root")
	if err != nil || grant == nil || grant.ID != r.ID {
		t.Fatalf("ForSession: %v %+v", err, grant)
	}
	if live, _ := f.svc.LiveGrants(f.alice.ID); !live["prod-db/root"].Equal(r.GrantEnds) {
		t.Fatalf("LiveGrants: %v", live)
	}
	now := time.Now().UTC()
	sess := &store.Session{ID: "s1", UserID: f.alice.ID, UserName: "alice", ResourceID: "res1", ResourceName: "prod-db", AccountID: "acct1",
		AccountName: "root", CreatedAt: now, ExpiresAt: r.GrantEnds, RequestID: r.ID, RequestReason: r.Reason}
	err = f.st.Update(func(tx *store.Tx) error {
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		return NoteUse(tx, r.ID, sess, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	active := f.svc.live.Add(sess)
	admin := Reviewer{ID: "u-admin", Name: "admin", Roles: []string{"admin"}, Admin: true}
	r, n, err := f.svc.Revoke(context.Background(), r.ID, admin, "", "done")
	if err != nil || n != 1 || r.Uses != 1 {
		t.Fatalf("revoke: %v, %d sessions ended, %+v", err, n, r)
	}
	select {
	case <-active.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the live session under the revoked grant is still running")
	}
	var ended *store.Session
	f.st.View(func(tx *store.Tx) (err error) { ended, err = tx.Session("s1"); return })
	if ended.EndedAt.IsZero() || ended.EndReason != "access request "+r.ID+" revoked by admin" {
		t.Fatalf("the session after the revocation: %+v", ended)
	}
	err = f.st.Update(func(tx *store.Tx) error { return NoteUse(tx, r.ID, &store.Session{ID: "s2", UserName: "alice"}, "") })
	if !errors.Is(err, ErrNotGrant) {
		t.Fatalf("a session opened under the revoked grant: %v", err)
	}
	if grant, _, _ := f.svc.ForSession(f.alice.ID, "prod-db", "root"); grant != nil {
		t.Fatalf("ForSession after the revocation: %+v", grant)
	}
}
