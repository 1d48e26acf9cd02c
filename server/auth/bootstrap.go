package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pamd/pamd/store"
)

// Built-in roles. admin may reach every resource; auditor reads sessions
// and the audit log; user is the base role for custom grants.
var builtinRoles = []store.Role{
	{Name: "admin", Description: "full control, access to every resource", Allow: []string{"*/*"}, MaxDuration: 12 * time.Hour, Builtin: true},
	{Name: "auditor", Description: "reads resources, sessions and the audit log", Builtin: true},
	{Name: "user", Description: "logs in; access comes from other roles", Builtin: true},
}

func (s *Service) bootstrap() error {
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
			adminPassword = RandomPassword()
			generated = true
		}
		h, err := HashPassword(adminPassword)
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
	file := s.InitialPasswordFile()
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

// InitialPasswordFile holds the bootstrap admin's one-time password until
// it is changed.
func (s *Service) InitialPasswordFile() string {
	return filepath.Join(s.cfg.DataDir, "initial-admin-password")
}

// DropInitialPassword removes the one-time password file once the
// bootstrap admin has a password of their own.
func (s *Service) DropInitialPassword(user string) {
	if user != "admin" {
		return
	}
	if err := os.Remove(s.InitialPasswordFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove the one-time admin password file", "err", err)
	}
}
