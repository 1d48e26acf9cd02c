package auth

import (
	"context"
	"errors"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/store"
)

var (
	ErrLoginFailed = errors.New("invalid username or password")
	ErrBadCode     = errors.New("invalid or already used MFA code")
)

// Login checks credentials and returns the user. The caller sees only
// ErrLoginFailed, ErrBadCode, an MFA-required error or a throttle answer;
// the audit log gets the real reason.
//
// Failures are throttled per source address and per name from that
// address before any password is hashed, hashes run in a few slots at
// most, and none runs inside a store transaction: a flood of logins slows
// down its sender and never stalls the server's writes.
func (s *Service) Login(ctx context.Context, name, password, code, source string) (*store.User, error) {
	u, err := s.login(ctx, name, password, code, source)
	s.cfg.Metrics.Login(loginOutcome(err))
	return u, err
}

// loginOutcome names a login's result in metrics.
func loginOutcome(err error) string {
	var mfa *MFARequired
	var ae *api.Error
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &mfa):
		return "mfa_required"
	case errors.As(err, &ae) && ae.Code == api.CodeThrottled:
		return "throttled"
	}
	return "failure"
}

func (s *Service) login(ctx context.Context, name, password, code, source string) (*store.User, error) {
	now := time.Now().UTC()
	if err := api.ValidName("user", name); err != nil {
		// Never written as given: a name is an audit field, and a megabyte
		// of escape sequences is not a name.
		s.trail.Event(audit.Name(name), "auth.login", "", "failure", source, "malformed user name")
		return nil, ErrLoginFailed
	}
	srcKey, nameKey := "login-src:"+source, "login-name:"+name+"|"+source
	if wait := max(s.throttle.wait(srcKey, perSource), s.throttle.wait(nameKey, perNameAndSource)); wait > 0 {
		return nil, tooMany("logins", wait)
	}
	var u *store.User
	err := s.st.View(func(tx *store.Tx) (err error) {
		u, err = tx.UserByName(name)
		if errors.Is(err, store.ErrNotFound) {
			u, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.slots.acquire(ctx); err != nil {
		return nil, err
	}
	pwOK := false
	if u == nil {
		CheckPassword(s.dummyPwd, password) // the same time as for a real user
	} else {
		pwOK = CheckPassword(u.PasswordHash, password)
	}
	s.slots.release()

	var (
		user    *store.User
		outcome error
		why     string
	)
	err = s.st.Update(func(tx *store.Tx) error {
		if u == nil {
			outcome, why = ErrLoginFailed, "unknown user"
			return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: "auth.login", Outcome: "failure", Source: source, Detail: why})
		}
		u, err := tx.User(u.ID) // fresh: the TOTP step may have moved
		if err != nil {
			return err
		}
		switch {
		case u.Disabled:
			outcome, why = ErrLoginFailed, "user disabled"
		case u.IsSSO():
			outcome, why = ErrLoginFailed, "SSO user: signs in through the SSO provider only"
		case !pwOK:
			outcome, why = ErrLoginFailed, "wrong password"
		case u.MFASecret != "" && code == "":
			outcome = &MFARequired{}
		case u.MFASecret != "" && !CheckTOTP(u, code, now):
			outcome, why = ErrBadCode, "wrong or reused MFA code"
		}
		if outcome == nil {
			user = u
			if err := tx.PutUser(u); err != nil {
				return err
			}
			return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: "auth.login", Outcome: "success", Source: source})
		}
		if why == "" { // MFA code asked for: not a failure yet
			return nil
		}
		action := "auth.login"
		if why == "wrong or reused MFA code" {
			action = "auth.mfa"
		}
		return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: action, Outcome: "failure", Source: source, Detail: why})
	})
	if err != nil {
		return nil, err
	}
	switch {
	case user != nil:
		s.throttle.succeed(nameKey)
	case why != "":
		s.throttle.fail(srcKey)
		s.throttle.fail(nameKey)
	}
	return user, outcome
}

type MFARequired struct{}

func (*MFARequired) Error() string {
	return "this user has MFA: give the code from the authenticator app"
}

// IssueToken makes an API token for u, valid for TokenTTL.
func (s *Service) IssueToken(u *store.User, source string) (string, time.Time, error) {
	return s.IssueSSOToken(u, source, time.Time{})
}

// IssueSSOToken is IssueToken for an SSO login, whose provider checked a
// second factor at mfaAt (zero: it did not, or it does not count).
func (s *Service) IssueSSOToken(u *store.User, source string, mfaAt time.Time) (string, time.Time, error) {
	secret := "pamd_" + RandomSecret(32)
	now := time.Now().UTC()
	t := &store.Token{Hash: HashToken(secret), UserID: u.ID, Source: source, CreatedAt: now, ExpiresAt: now.Add(TokenTTL), MFAAt: mfaAt}
	err := s.st.Update(func(tx *store.Tx) error {
		// Drop this user's expired tokens while here, so the bucket stays small.
		all, err := tx.Tokens()
		if err != nil {
			return err
		}
		for _, old := range all {
			if now.After(old.ExpiresAt) {
				tx.DeleteToken(old.Hash)
			}
		}
		return tx.PutToken(t)
	})
	return secret, t.ExpiresAt, err
}
