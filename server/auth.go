package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"

	"github.com/pamd/pamd/store"
)

const (
	minPasswordLen = 12
	tokenTTL       = 12 * time.Hour
	totpPeriod     = 30
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
		// A generated password is one-time: it sits in a file until the
		// admin sets their own. One the operator chose is theirs already.
		u := &store.User{ID: store.NewID(), Name: "admin", Roles: []string{"admin"}, PasswordHash: h,
			MustChangePassword: generated && !s.cfg.KeepAdminPassword, CreatedAt: time.Now().UTC()}
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
	file := s.initialPasswordFile()
	if err := os.WriteFile(file, []byte(adminPassword+"\n"), 0o600); err != nil {
		return fmt.Errorf("server: write %s: %w", file, err)
	}
	// The password itself is not printed: the server's output ends up in
	// journald and log shippers.
	if s.cfg.KeepAdminPassword {
		fmt.Fprintf(s.cfg.Out, "pamd: created user admin; its password is in %s (mode 0600)\n", file)
	} else {
		fmt.Fprintf(s.cfg.Out, "pamd: created user admin; its one-time password is in %s (mode 0600) and must be changed at the first login\n", file)
	}
	return nil
}

// initialPasswordFile holds the bootstrap admin's one-time password until
// it is changed.
func (s *Server) initialPasswordFile() string {
	return filepath.Join(s.cfg.DataDir, "initial-admin-password")
}

// dropInitialPassword removes the one-time password file once the
// bootstrap admin has a password of their own.
func (s *Server) dropInitialPassword(user string) {
	if user != "admin" {
		return
	}
	if err := os.Remove(s.initialPasswordFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove the one-time admin password file", "err", err)
	}
}

var (
	errLoginFailed = errors.New("invalid username or password")
	errBadCode     = errors.New("invalid or already used MFA code")
)

// login checks credentials and returns the user. The caller sees only
// errLoginFailed, errBadCode, an MFA-required error or a throttle answer;
// the audit log gets the real reason.
//
// Failures are throttled per source address and per name from that
// address before any password is hashed, hashes run in a few slots at
// most, and none runs inside a store transaction: a flood of logins slows
// down its sender and never stalls the server's writes.
func (s *Server) login(ctx context.Context, name, password, code, source string) (*store.User, error) {
	now := time.Now().UTC()
	if err := validName("user", name); err != nil {
		// Never written as given: a name is an audit field, and a megabyte
		// of escape sequences is not a name.
		s.auditEvent(auditName(name), "auth.login", "", "failure", source, "malformed user name")
		return nil, errLoginFailed
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
	if err := s.hashSlots.acquire(ctx); err != nil {
		return nil, err
	}
	pwOK := false
	if u == nil {
		checkPassword(s.dummyPwd, password) // the same time as for a real user
	} else {
		pwOK = checkPassword(u.PasswordHash, password)
	}
	s.hashSlots.release()

	var (
		user    *store.User
		outcome error
		why     string
	)
	err = s.st.Update(func(tx *store.Tx) error {
		if u == nil {
			outcome, why = errLoginFailed, "unknown user"
			return tx.AppendAudit(&store.AuditEvent{Time: now, Actor: name, Action: "auth.login", Outcome: "failure", Source: source, Detail: why})
		}
		u, err := tx.User(u.ID) // fresh: the TOTP step may have moved
		if err != nil {
			return err
		}
		switch {
		case u.Disabled:
			outcome, why = errLoginFailed, "user disabled"
		case !pwOK:
			outcome, why = errLoginFailed, "wrong password"
		case u.MFASecret != "" && code == "":
			outcome = &mfaRequired{}
		case u.MFASecret != "" && !checkTOTP(u, code, now):
			outcome, why = errBadCode, "wrong or reused MFA code"
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

// auditName makes a name from a request fit for the audit log: a valid
// name as it is, anything else as at most 64 bytes of it, quoted, so no
// control character and no megabyte gets through.
func auditName(name string) string {
	if validName("", name) == nil {
		return name
	}
	if len(name) > 64 {
		name = name[:64]
	}
	return "invalid:" + strconv.QuoteToASCII(name)
}

type mfaRequired struct{}

func (*mfaRequired) Error() string {
	return "this user has MFA: give the code from the authenticator app"
}

func (s *Server) issueToken(u *store.User, source string) (string, time.Time, error) {
	secret := "pamd_" + randomSecret(32)
	now := time.Now().UTC()
	t := &store.Token{Hash: hashToken(secret), UserID: u.ID, Source: source, CreatedAt: now, ExpiresAt: now.Add(tokenTTL)}
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

// revokeTokens deletes a user's API tokens but keep (a token hash, or
// ""), and returns how many went. Whatever changes who a user is or what
// they may do (a new password, an MFA reset, disabling, a removed role)
// calls it, so no token issued before the change outlives it.
func revokeTokens(tx *store.Tx, userID, keep string) (int, error) {
	all, err := tx.Tokens()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range all {
		if t.UserID != userID || t.Hash == keep {
			continue
		}
		if err := tx.DeleteToken(t.Hash); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// tokenID names a token in listings: a prefix of its hash, which says
// nothing about the secret.
func tokenID(hash string) string { return hash[:min(12, len(hash))] }
