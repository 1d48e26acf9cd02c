package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/metrics"
	"github.com/pamd/pamd/store"
)

// Config is what authentication needs of the server's settings.
type Config struct {
	DataDir string // where the bootstrap admin's one-time password file goes
	// AdminPassword, when set, is the bootstrap admin's password instead of
	// a generated one; KeepAdminPassword keeps a generated one usable
	// without a change.
	AdminPassword     string
	KeepAdminPassword bool
	Out               io.Writer // where the bootstrap says where the password is
	Metrics           *metrics.M
}

// Service authenticates users: logins and their throttling, API tokens,
// the console's CSRF tokens, and the first start's admin.
type Service struct {
	st       *store.Store
	log      *slog.Logger
	trail    audit.Trail
	cfg      Config
	throttle *throttle
	slots    hashSlots
	dummyPwd string // hashed against for unknown users, so timing does not tell
	csrfKey  []byte
}

// New makes the built-in roles and the first admin on a new store, and
// loads the CSRF key.
func New(st *store.Store, log *slog.Logger, cfg Config) (*Service, error) {
	s := &Service{st: st, log: log, trail: audit.Trail{St: st, Log: log}, cfg: cfg, throttle: newThrottle(), slots: newHashSlots()}
	if err := s.bootstrap(); err != nil {
		return nil, err
	}
	if err := s.loadCSRFKey(); err != nil {
		return nil, err
	}
	s.dummyPwd, _ = HashPassword("pamd-timing-equaliser")
	return s, nil
}

// ConfirmPassword asks a logged-in caller for their password again (before
// a change a token alone must not make), throttled and hashed in a slot
// like a login. action names the failure in the audit log.
func (s *Service) ConfirmPassword(ctx context.Context, c *Caller, password, action string) error {
	key := "reauth:" + c.User.ID
	if wait := max(s.throttle.wait(key, perNameAndSource), s.throttle.wait("login-src:"+c.Source, perSource)); wait > 0 {
		return tooMany("password checks", wait)
	}
	if err := s.slots.acquire(ctx); err != nil {
		return err
	}
	ok := CheckPassword(c.User.PasswordHash, password)
	s.slots.release()
	if !ok {
		s.throttle.fail(key)
		s.throttle.fail("login-src:" + c.Source)
		s.trail.Event(c.User.Name, action, c.User.Name, "failure", c.Source, "wrong current password")
		return api.Errorf(http.StatusUnauthorized, "the current password is wrong")
	}
	s.throttle.succeed(key)
	return nil
}

// MFA codes asked for at access time are throttled per user (a stolen
// token must not guess the owner's codes), per token, and per source
// address with the looser limit of an address many may share.
type throttleKey struct {
	key string
	p   policy
}

func mfaKeys(c *Caller) []throttleKey {
	return []throttleKey{{"mfa-user:" + c.User.ID, perMFA}, {"mfa-token:" + c.TokenHash, perMFA}, {"mfa-src:" + c.Source, perSource}}
}

// MFAWait is how long c must wait before trying another code (0: now).
func (s *Service) MFAWait(c *Caller) error {
	var wait time.Duration
	for _, k := range mfaKeys(c) {
		wait = max(wait, s.throttle.wait(k.key, k.p))
	}
	if wait > 0 {
		return tooMany("MFA codes", wait)
	}
	return nil
}

// MFAFailed counts a wrong code of c's.
func (s *Service) MFAFailed(c *Caller) {
	for _, k := range mfaKeys(c) {
		s.throttle.fail(k.key)
	}
}

// MFASucceeded forgets c's wrong codes.
func (s *Service) MFASucceeded(c *Caller) {
	for _, k := range mfaKeys(c)[:2] { // the source's count stays: others may share it
		s.throttle.succeed(k.key)
	}
}

// SetPassword sets a user's password directly (pamd dev --admin-password).
func (s *Service) SetPassword(name, password string) error {
	if len(password) < MinPasswordLen {
		return fmt.Errorf("password: at least %d characters", MinPasswordLen)
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	return s.st.Update(func(tx *store.Tx) error {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		if CheckPassword(u.PasswordHash, password) {
			return nil
		}
		u.PasswordHash, u.MustChangePassword = h, false
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return audit.Append(tx, "system", "user.password", name, "success", "", "set by pamd dev --admin-password")
	})
}
