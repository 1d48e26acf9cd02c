package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/store"
)

// Credential rotation never leaves an account without a working credential:
//
//	sealed    the new credential is stored (sealed) as the account's pending
//	          one; the old one stays the account's credential
//	changed   the gateway made the change on the target
//	verified  the gateway logged in with the new credential, then retired the
//	          old one (an SSH key leaves authorized_keys only now)
//	answered  the server has the gateway's answer; in one transaction it
//	          promotes the new credential, or drops it when the old one still
//	          logs in, or keeps both when neither does
//
// A process killed between sealed and answered leaves the pending
// credential behind; the scheduler resumes it (at start and whenever its
// gateway is back), and the gateway first checks whether the target already
// has it. The step names are those PAMD_TEST_PAUSE_ROTATION stops at.

// rotationTimeout bounds one rotation at the gateway.
const rotationTimeout = 3 * time.Minute

// Gateways is what rotations need of the gateway hub.
type Gateways interface {
	// Reachable says whether a gateway serving res is connected; Pick
	// names the one to ask (its gateway, or one of its group's).
	Reachable(res *store.Resource) bool
	Pick(res *store.Resource) (string, error)
	Ask(ctx context.Context, gateway string, kind tunnel.Kind, body any, timeout time.Duration, answer any) error
}

// Config is what rotations need of the server.
type Config struct {
	Store    *store.Store
	Log      *slog.Logger
	Kinds    *kind.Set
	Gateways Gateways
	// LiveOn counts the live sessions on an account (for the audit detail).
	LiveOn func(accountID string) int
	// Check is how often the schedule looks for due rotations.
	Check   time.Duration
	Metrics *metrics.M
}

// Rotator runs rotations, one at a time per account.
type Rotator struct {
	cfg  Config
	st   *store.Store
	log  *slog.Logger
	mu   sync.Mutex
	busy map[string]bool
	// wake asks the rotation loop to look now (a gateway came back, and
	// with it maybe an interrupted rotation's target).
	wake chan struct{}
}

// New is a rotator; Run starts its schedule.
func New(cfg Config) *Rotator {
	return &Rotator{cfg: cfg, st: cfg.Store, log: cfg.Log, busy: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Poke wakes the rotation loop without waiting for it.
func (r *Rotator) Poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Claim keeps rotations off the account until Release: false when one
// runs now. Editing an account claims it too, so a rotation settling
// cannot overwrite the edit, nor the edit a promoted credential.
func (r *Rotator) Claim(accountID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[accountID] {
		return false
	}
	r.busy[accountID] = true
	return true
}

// Release ends a Claim.
func (r *Rotator) Release(accountID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.busy, accountID)
}

// Rotatable says why an account cannot be rotated, or "" (its kind says).
func (s *Rotator) Rotatable(res *store.Resource, a *store.Account) string {
	k, ok := s.cfg.Kinds.Of(res.Type)
	if !ok {
		return res.Type + " resources have no credentials to rotate"
	}
	_, why := k.Rotation(a)
	return why
}

// Rotate runs (or resumes) one rotation of an account and records its
// outcome on the account and in the audit log.
// The gateway's answer is awaited until ctx ends.
func (s *Rotator) Rotate(ctx context.Context, resID, acctID, trigger, actor, source string) (*store.Account, error) {
	if !s.Claim(acctID) {
		return nil, api.Errorf(http.StatusConflict, "a rotation of this account is already running")
	}
	defer s.Release(acctID)
	var (
		res       *store.Resource
		acct, via *store.Account
	)
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.Resource(resID); err != nil {
			return err
		}
		if acct, err = tx.Account(resID, acctID); err != nil {
			return err
		}
		if w := acct.Rotation.With; w != "" {
			if via, err = tx.AccountByName(resID, w); err != nil {
				return api.Errorf(http.StatusBadRequest, "rotation account %s/%s no longer exists (pamd accounts set %s/%s --rotate-with ...)", res.Name, w, res.Name, acct.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if why := s.Rotatable(res, acct); why != "" {
		return nil, api.Errorf(http.StatusBadRequest, "%s", why)
	}
	resume := acct.Rotation.Pending != nil
	if !resume {
		k, _ := s.cfg.Kinds.Of(res.Type)
		how, _ := k.Rotation(acct)
		p, err := newCredential(res, acct, how, trigger)
		if err != nil {
			return nil, err
		}
		err = s.st.Update(func(tx *store.Tx) error {
			a, err := tx.Account(resID, acctID)
			if err != nil {
				return err
			}
			a.Rotation.Pending = p
			acct = a
			return tx.PutAccount(a)
		})
		if err != nil {
			return nil, fmt.Errorf("seal the new credential: %w", err)
		}
	}
	proxy.PauseForTest(s.log, "sealed")

	result, sent, err := s.askRotation(ctx, res, acct, via, resume)
	proxy.PauseForTest(s.log, "answered")
	live := s.cfg.LiveOn(acctID)
	err = s.st.Update(func(tx *store.Tx) error {
		a, terr := tx.Account(resID, acctID)
		if terr != nil {
			return terr
		}
		outcome, detail := settle(a, result, err, sent || resume)
		s.cfg.Metrics.Rotation(outcome)
		detail = trigger + ": " + detail
		if outcome == "success" && live > 0 {
			detail += fmt.Sprintf("; %d live session(s) keep their open connections, and their new connections use the new credential", live)
		}
		acct = a
		if terr := tx.PutAccount(a); terr != nil {
			return terr
		}
		return audit.Append(tx, actor, "account.rotate", res.Name+"/"+a.Name, outcome, source, detail)
	})
	if err != nil {
		return nil, fmt.Errorf("record the rotation: %w", err)
	}
	return acct, nil
}

// askRotation sends the rotation to the resource's gateway. sent says
// whether the gateway may have started on it.
func (s *Rotator) askRotation(ctx context.Context, res *store.Resource, acct, via *store.Account, resume bool) (*tunnel.RotationResult, bool, error) {
	gateway, err := s.cfg.Gateways.Pick(res)
	if err == nil && !s.cfg.Gateways.Reachable(res) {
		err = fmt.Errorf("gateway %s is offline", gateway)
	}
	if err != nil {
		return nil, false, err
	}
	// A certificate a rotation account logs in with lasts as long as the rotation may.
	sess := &store.Session{ID: "rotation-" + store.NewID(), UserName: "pamd-rotation", ExpiresAt: time.Now().Add(rotationTimeout)}
	p := acct.Rotation.Pending
	r := tunnel.Rotation{NewPassword: p.Password, NewPrivateKey: p.PrivateKey, NewPublicKey: p.PublicKey, Resume: resume}
	r.Account.SessionID, r.Account.ExpiresAt = sess.ID, sess.ExpiresAt
	if err := s.cfg.Kinds.Descriptor(&r.Account, res, acct, sess); err != nil {
		return nil, false, err
	}
	if via != nil {
		r.With = &tunnel.Descriptor{SessionID: sess.ID, ExpiresAt: sess.ExpiresAt}
		if err := s.cfg.Kinds.Descriptor(r.With, res, via, sess); err != nil {
			return nil, false, err
		}
	}
	var result tunnel.RotationResult
	if err := s.cfg.Gateways.Ask(ctx, gateway, tunnel.KindRotate, r, rotationTimeout, &result); err != nil {
		var refusal *tunnel.Refusal
		return nil, !errors.As(err, &refusal), err
	}
	return &result, true, nil
}

// settle applies a rotation's outcome to the account: the new credential
// replaces the old one only once verified, and is kept while neither may
// work. It returns the audit outcome and detail (never a credential).
func settle(a *store.Account, r *tunnel.RotationResult, err error, touched bool) (outcome, detail string) {
	now := time.Now().UTC()
	rot := &a.Rotation
	p := rot.Pending
	rot.LastAttempt, rot.Warning = now, ""
	switch {
	case p == nil:
		rot.Result, rot.Error = "failure", "the rotation's new credential was lost"
	case err != nil && !touched:
		rot.Pending = nil
		rot.Result, rot.Error = "failure", err.Error()+"; nothing was changed"
	case err != nil:
		rot.Result, rot.Error = "failure", err.Error()+"; the target may have the new credential, so pamd keeps both and resumes when the gateway answers"
	case r.Verified:
		if p.PrivateKey != "" {
			a.PrivateKey, a.Passphrase = p.PrivateKey, ""
		} else {
			a.Password = p.Password
		}
		rot.Pending, rot.LastSuccess = nil, now
		rot.Result, rot.Error, rot.Warning = "success", "", r.Warning
	case r.OldWorks:
		rot.Pending = nil
		rot.Result, rot.Error = "failure", r.Error+"; the account keeps its old credential"
	default:
		rot.Result, rot.Error = "failure", r.Error+"; neither the old nor the new credential logs in, so pamd keeps both and tries again"
	}
	if rot.Result == "success" {
		detail = "new credential verified"
		if rot.Warning != "" {
			detail += "; " + rot.Warning
		}
		return "success", detail
	}
	return "failure", rot.Error
}
