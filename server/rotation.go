package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
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

// rotations keeps one rotation at a time per account.
type rotations struct {
	mu   sync.Mutex
	busy map[string]bool
	// wake asks the rotation loop to look now (a gateway came back, and
	// with it maybe an interrupted rotation's target).
	wake chan struct{}
}

// poke wakes the rotation loop without waiting for it.
func (r *rotations) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *rotations) claim(accountID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[accountID] {
		return false
	}
	if r.busy == nil {
		r.busy = map[string]bool{}
	}
	r.busy[accountID] = true
	return true
}

func (r *rotations) release(accountID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.busy, accountID)
}

// rotatable says why an account cannot be rotated, or "" (its kind says).
func (s *Server) rotatable(res *store.Resource, a *store.Account) string {
	k, ok := s.kinds.of(res.Type)
	if !ok {
		return res.Type + " resources have no credentials to rotate"
	}
	_, why := k.Rotation(a)
	return why
}

// rotate runs (or resumes) one rotation of an account and records its
// outcome on the account and in the audit log.
// The gateway's answer is awaited until ctx ends.
func (s *Server) rotate(ctx context.Context, resID, acctID, trigger, actor, source string) (*store.Account, error) {
	if !s.rot.claim(acctID) {
		return nil, httpError(http.StatusConflict, "a rotation of this account is already running")
	}
	defer s.rot.release(acctID)
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
				return httpError(http.StatusBadRequest, "rotation account %s/%s no longer exists (pamd accounts set %s/%s --rotate-with ...)", res.Name, w, res.Name, acct.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if why := s.rotatable(res, acct); why != "" {
		return nil, httpError(http.StatusBadRequest, "%s", why)
	}
	resume := acct.Rotation.Pending != nil
	if !resume {
		k, _ := s.kinds.of(res.Type)
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
	live := s.live.onAccount(acctID)
	err = s.st.Update(func(tx *store.Tx) error {
		a, terr := tx.Account(resID, acctID)
		if terr != nil {
			return terr
		}
		outcome, detail := settle(a, result, err, sent || resume)
		detail = trigger + ": " + detail
		if outcome == "success" && live > 0 {
			detail += fmt.Sprintf("; %d live session(s) keep their open connections, and their new connections use the new credential", live)
		}
		acct = a
		if terr := tx.PutAccount(a); terr != nil {
			return terr
		}
		return appendAudit(tx, actor, "account.rotate", res.Name+"/"+a.Name, outcome, source, detail)
	})
	if err != nil {
		return nil, fmt.Errorf("record the rotation: %w", err)
	}
	return acct, nil
}

// askRotation sends the rotation to the resource's gateway. sent says
// whether the gateway may have started on it.
func (s *Server) askRotation(ctx context.Context, res *store.Resource, acct, via *store.Account, resume bool) (*tunnel.RotationResult, bool, error) {
	if !s.hub.online(res.Gateway) {
		return nil, false, fmt.Errorf("gateway %s is offline", res.Gateway)
	}
	// A certificate a rotation account logs in with lasts as long as the rotation may.
	sess := &store.Session{ID: "rotation-" + store.NewID(), UserName: "pamd-rotation", ExpiresAt: time.Now().Add(rotationTimeout)}
	p := acct.Rotation.Pending
	r := tunnel.Rotation{NewPassword: p.Password, NewPrivateKey: p.PrivateKey, NewPublicKey: p.PublicKey, Resume: resume}
	r.Account.SessionID, r.Account.ExpiresAt = sess.ID, sess.ExpiresAt
	if err := s.accountDescriptor(&r.Account, res, acct, sess); err != nil {
		return nil, false, err
	}
	if via != nil {
		r.With = &tunnel.Descriptor{SessionID: sess.ID, ExpiresAt: sess.ExpiresAt}
		if err := s.accountDescriptor(r.With, res, via, sess); err != nil {
			return nil, false, err
		}
	}
	var result tunnel.RotationResult
	if err := s.ask(ctx, res.Gateway, tunnel.KindRotate, r, rotationTimeout, &result); err != nil {
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

// newCredential makes the account's next credential: a password from the
// resource's policy, or an Ed25519 key pair (for SSH key accounts) as its
// kind says.
func newCredential(res *store.Resource, a *store.Account, how kind.Rotation, trigger string) (*store.PendingCredential, error) {
	p := &store.PendingCredential{Trigger: trigger, Since: time.Now().UTC()}
	if how == kind.RotateKey {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		comment := "pamd " + res.Name + "/" + a.Name + " " + p.Since.Format("2006-01-02")
		block, err := ssh.MarshalPrivateKey(priv, comment)
		if err != nil {
			return nil, err
		}
		sshPub, err := ssh.NewPublicKey(pub)
		if err != nil {
			return nil, err
		}
		p.PrivateKey = string(pem.EncodeToMemory(block))
		p.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + strings.ReplaceAll(comment, " ", "_")
		return p, nil
	}
	policy, err := passwordPolicyOf(res.Options)
	if err != nil {
		return nil, err
	}
	if p.Password, err = policy.generate(); err != nil {
		return nil, err
	}
	return p, nil
}

// passwordPolicy shapes generated passwords so targets accept them. The
// symbols avoid characters that need quoting in shells, connection strings
// and chpasswd's user:password lines.
type passwordPolicy struct {
	length  int
	classes []string
}

var passwordClasses = map[string]string{
	"lower":  "abcdefghijkmnopqrstuvwxyz",
	"upper":  "ABCDEFGHJKLMNPQRSTUVWXYZ",
	"digit":  "23456789",
	"symbol": "-_.~!@#%^*+=",
}

const (
	defaultPasswordLength = 32
	minPasswordLength     = 12
	maxPasswordLength     = 128
)

// passwordPolicyOf reads a resource's password_length and password_classes
// options (defaults: 32, all four classes).
func passwordPolicyOf(o map[string]string) (passwordPolicy, error) {
	p := passwordPolicy{length: defaultPasswordLength, classes: []string{"lower", "upper", "digit", "symbol"}}
	if v := o["password_length"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minPasswordLength || n > maxPasswordLength {
			return p, httpError(http.StatusBadRequest, "--password-length: want %d to %d", minPasswordLength, maxPasswordLength)
		}
		p.length = n
	}
	if v := o["password_classes"]; v != "" {
		p.classes = nil
		seen := map[string]bool{}
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if _, ok := passwordClasses[c]; !ok {
				return p, httpError(http.StatusBadRequest, "--password-classes: %q is not one of lower, upper, digit, symbol", c)
			}
			if !seen[c] {
				seen[c] = true
				p.classes = append(p.classes, c)
			}
		}
	}
	return p, nil
}

// generate returns a password of the policy's length with at least one
// character of each class, drawn from crypto/rand.
func (p passwordPolicy) generate() (string, error) {
	all := ""
	out := make([]byte, 0, p.length)
	for _, c := range p.classes {
		set := passwordClasses[c]
		all += set
		ch, err := pick(set)
		if err != nil {
			return "", err
		}
		out = append(out, ch)
	}
	for len(out) < p.length {
		ch, err := pick(all)
		if err != nil {
			return "", err
		}
		out = append(out, ch)
	}
	// Shuffle so the guaranteed characters are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}

func pick(set string) (byte, error) {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		return 0, err
	}
	return set[i.Int64()], nil
}

// parseInterval reads a rotation interval: Go durations plus days ("30d");
// "0" or "off" turns the schedule off.
func parseInterval(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "0" || v == "off" || v == "" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < time.Second {
		return 0, httpError(http.StatusBadRequest, "--rotation-interval %q: want a duration such as 30d, 12h or 90m (0 turns it off)", v)
	}
	return d, nil
}

func formatInterval(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// nextRotation is when the schedule next rotates the account: an interval
// after the later of the schedule's start and the last attempt, or within
// an hour after a failure.
func nextRotation(r *store.Rotation) time.Time {
	if r.Interval == 0 {
		return time.Time{}
	}
	base, wait := r.Since, r.Interval
	if r.LastAttempt.After(base) {
		base = r.LastAttempt
	}
	if r.Result == "failure" && wait > time.Hour {
		wait = time.Hour
	}
	return base.Add(wait)
}

func rotationView(r *store.Rotation) *api.Rotation {
	if r.Interval == 0 && r.With == "" && r.LastAttempt.IsZero() && r.Pending == nil {
		return nil
	}
	v := &api.Rotation{RotateWith: r.With, LastAttempt: r.LastAttempt, LastSuccess: r.LastSuccess,
		Result: r.Result, Error: r.Error, Warning: r.Warning, NextRun: nextRotation(r), Pending: r.Pending != nil}
	if r.Interval > 0 {
		v.Interval = formatInterval(r.Interval)
	}
	if r.Pending != nil {
		v.PendingSince = r.Pending.Since
	}
	return v
}

// runRotations resumes interrupted rotations and runs scheduled ones,
// looking every cfg.RotationCheck and whenever a gateway connects, one
// rotation at a time. It starts none once ctx ends; the one running waits
// for its gateway until work ends (the shutdown's grace, as for requests).
func (s *Server) runRotations(ctx, work context.Context) {
	t := time.NewTicker(s.cfg.RotationCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.rot.wake:
		}
		s.rotateDue(ctx, work)
	}
}

func (s *Server) rotateDue(ctx, work context.Context) {
	type due struct{ res, acct, name, trigger, gateway string }
	var todo []due
	now := time.Now()
	s.st.View(func(tx *store.Tx) error {
		all, err := tx.Resources()
		for _, res := range all {
			accts, _ := tx.Accounts(res.ID)
			for _, a := range accts {
				switch {
				case a.Rotation.Pending != nil:
					todo = append(todo, due{res.ID, a.ID, res.Name + "/" + a.Name, "resumed after an interruption", res.Gateway})
				case a.Rotation.Interval > 0 && !now.Before(nextRotation(&a.Rotation)):
					todo = append(todo, due{res.ID, a.ID, res.Name + "/" + a.Name, "scheduled", res.Gateway})
				}
			}
		}
		return err
	})
	for _, d := range todo {
		if ctx.Err() != nil {
			return
		}
		if !s.hub.online(d.gateway) {
			continue // a pending rotation waits for its gateway; a due one is tried when it is back
		}
		a, err := s.rotate(work, d.res, d.acct, d.trigger, "system", "")
		switch {
		case err != nil:
			s.log.Warn("rotation not run", "account", d.name, "err", err)
		case a.Rotation.Result == "failure":
			s.log.Warn("rotation failed", "account", d.name, "trigger", d.trigger, "err", a.Rotation.Error)
		default:
			s.log.Info("rotated", "account", d.name, "trigger", d.trigger)
		}
	}
}

// handleRotateAccount rotates an account now and answers with its status.
func (s *Server) handleRotateAccount(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	res, a, err := s.accountOfPath(r)
	if err != nil {
		return err
	}
	// A client that stops waiting does not stop the rotation: the gateway
	// goes on with it, so the server waits for its answer (until shutdown).
	ctx, stop := s.untilShutdown(r)
	defer stop()
	a, err = s.rotate(ctx, res.ID, a.ID, "on demand by "+c.user.Name, c.user.Name, c.source)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RotateResult{Account: s.accountView(res, a), LiveSessions: s.live.onAccount(a.ID)})
	return nil
}

// takePolicy moves the password policy options out of an options map, so
// the type's own option checks never see them.
func takePolicy(opts map[string]string) map[string]string {
	policy := map[string]string{}
	for _, k := range []string{"password_length", "password_classes"} {
		if v, ok := opts[k]; ok {
			policy[k] = v
			delete(opts, k)
		}
	}
	return policy
}

// setPolicy checks policy options and sets them on the resource.
func setPolicy(k kind.Kind, res *store.Resource, policy map[string]string, changed *[]string) error {
	if len(policy) == 0 {
		return nil
	}
	if !k.Schema().Rotates {
		return httpError(http.StatusBadRequest, "%s resources have no credentials to rotate: --password-length and --password-classes do not apply", res.Type)
	}
	merged := map[string]string{}
	for k, v := range res.Options {
		merged[k] = v
	}
	for k, v := range policy {
		merged[k] = v
	}
	if _, err := passwordPolicyOf(merged); err != nil {
		return err
	}
	if res.Options == nil {
		res.Options = map[string]string{}
	}
	for k, v := range policy {
		if res.Options[k] != v {
			res.Options[k] = v
			*changed = append(*changed, k+" "+v)
		}
	}
	return nil
}
