package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/pamd/pamd/store"
)

const (
	minPasswordLen  = 12
	maxFailedLogins = 5
	lockoutDuration = 15 * time.Minute
	tokenTTL        = 12 * time.Hour
	totpPeriod      = 30
)

// argon2id parameters: the OWASP minimum for interactive logins (19 MiB, t=2).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// randomSecret returns n random bytes as URL-safe base64.
func randomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomPassword is easy to paste: letters and digits only, 20 of them.
func randomPassword() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// checkTOTP accepts a code for the current step or one either side, but only
// for a step later than the last one used: a code works once.
func checkTOTP(u *store.User, code string, now time.Time) bool {
	code = strings.TrimSpace(code)
	if u.MFASecret == "" || len(code) != 6 {
		return false
	}
	return acceptCode(u.MFASecret, code, now, &u.MFALastStep)
}

func acceptCode(secret, code string, now time.Time, lastStep *uint64) bool {
	cur := uint64(now.Unix()) / totpPeriod
	for _, step := range []uint64{cur - 1, cur, cur + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(int64(step*totpPeriod), 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			if step <= *lastStep {
				return false // replay
			}
			*lastStep = step
			return true
		}
	}
	return false
}

// Built-in roles. admin may reach every resource; auditor reads sessions
// and the audit log; user is the base role for custom grants.
var builtinRoles = []store.Role{
	{Name: "admin", Description: "full control, access to every resource", Allow: []string{"*/*"}, MaxDuration: 12 * time.Hour, Builtin: true},
	{Name: "auditor", Description: "reads resources, sessions and the audit log", Builtin: true},
	{Name: "user", Description: "logs in; access comes from other roles", Builtin: true},
}

func (s *Server) bootstrap() error {
	var adminPassword string
	var generated bool
	err := s.st.Update(func(tx *store.Tx) error {
		for _, r := range builtinRoles {
			if _, err := tx.RoleByName(r.Name); err == nil {
				continue
			}
			r.ID, r.CreatedAt = store.NewID(), time.Now().UTC()
			if err := tx.CreateRole(&r); err != nil {
				return err
			}
		}
		users, err := tx.Users()
		if err != nil || len(users) > 0 {
			return err
		}
		adminPassword = s.cfg.AdminPassword
		if adminPassword == "" {
			adminPassword = randomPassword()
			generated = true
		}
		h, err := hashPassword(adminPassword)
		if err != nil {
			return err
		}
		u := &store.User{ID: store.NewID(), Name: "admin", Roles: []string{"admin"}, PasswordHash: h, CreatedAt: time.Now().UTC()}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		return tx.AppendAudit(&store.AuditEvent{Time: time.Now().UTC(), Actor: "system", Action: "user.create", Target: "admin", Outcome: "success", Detail: "first start"})
	})
	if err != nil {
		return fmt.Errorf("server: first start: %w", err)
	}
	if !generated {
		return nil // none created, or the operator chose it
	}
	file := filepath.Join(s.cfg.DataDir, "initial-admin-password")
	if err := os.WriteFile(file, []byte(adminPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("server: write %s: %w", file, err)
	}
	fmt.Fprintf(s.cfg.Out, "pamd: created user admin with password %s (also in %s; change it after logging in)\n", adminPassword, file)
	return nil
}

var (
	errLoginFailed = errors.New("invalid username or password (5 failed attempts lock an account for 15 minutes)")
	errBadCode     = errors.New("invalid or already used MFA code")
)

// login checks credentials and returns the user. A failure is counted
// toward lockout and audited with the real reason; the caller sees only
// errLoginFailed, errBadCode or an MFA-required error.
func (s *Server) login(name, password, code, source string) (*store.User, error) {
	now := time.Now().UTC()
	var (
		user    *store.User
		outcome error
		why     string
	)
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.UserByName(name)
		if errors.Is(err, store.ErrNotFound) {
			checkPassword(s.dummyPwd, password)
			outcome, why = errLoginFailed, "unknown user"
			return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: "auth.login", Outcome: "failure", Source: source, Detail: why})
		}
		if err != nil {
			return err
		}
		pwOK := checkPassword(u.PasswordHash, password)
		switch {
		case u.Disabled:
			outcome, why = errLoginFailed, "user disabled"
		case now.Before(u.LockedUntil):
			outcome, why = errLoginFailed, "user locked"
		case !pwOK:
			outcome, why = errLoginFailed, "wrong password"
		case u.MFASecret != "" && code == "":
			outcome = &mfaRequired{}
		case u.MFASecret != "" && !checkTOTP(u, code, now):
			outcome, why = errBadCode, "wrong or reused MFA code"
		}
		if outcome == nil {
			u.FailedLogins, u.LockedUntil = 0, time.Time{}
			user = u
			if err := tx.PutUser(u); err != nil {
				return err
			}
			return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: "auth.login", Outcome: "success", Source: source})
		}
		if why == "" { // MFA code asked for: not a failure yet
			return nil
		}
		if why == "wrong password" || why == "wrong or reused MFA code" {
			u.FailedLogins++
			if u.FailedLogins >= maxFailedLogins {
				u.FailedLogins, u.LockedUntil = 0, now.Add(lockoutDuration)
				why += "; user locked for 15 minutes"
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
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
	return user, outcome
}

type mfaRequired struct{}

func (*mfaRequired) Error() string {
	return "this user has MFA: give the code from the authenticator app"
}

func (s *Server) issueToken(u *store.User) (string, time.Time, error) {
	secret := "pamd_" + randomSecret(32)
	now := time.Now().UTC()
	t := &store.Token{Hash: hashToken(secret), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(tokenTTL)}
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
