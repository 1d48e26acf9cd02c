package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Info{Version: s.cfg.Version, CAFingerprint: s.pin, ResourceCA: string(s.ca.resource.certPEM)})
	return nil
}

// loginForAPI checks a login request and words its failure for the API.
func (s *Server) loginForAPI(ctx context.Context, req api.LoginRequest, source string) (*store.User, error) {
	u, err := s.login(ctx, req.Username, req.Password, req.TOTP, source)
	var mfa *mfaRequired
	switch {
	case errors.As(err, &mfa):
		return nil, &api.Error{Status: http.StatusUnauthorized, Code: api.CodeMFARequired, Message: err.Error()}
	case errors.Is(err, errLoginFailed), errors.Is(err, errBadCode):
		return nil, httpError(http.StatusUnauthorized, "%s", err.Error())
	}
	return u, err
}

// loginRequest reads a login request, checks it and issues a token.
func (s *Server) loginRequest(r *http.Request) (*store.User, string, time.Time, error) {
	if err := s.checkLoginOrigin(r); err != nil {
		return nil, "", time.Time{}, err
	}
	var req api.LoginRequest
	if err := decode(r, &req); err != nil {
		return nil, "", time.Time{}, err
	}
	u, err := s.loginForAPI(r.Context(), req, sourceOf(r))
	if err != nil {
		return nil, "", time.Time{}, err
	}
	token, exp, err := s.issueToken(u, sourceOf(r))
	return u, token, exp, err
}

// checkLoginOrigin refuses a login a browser sends on another site's
// behalf (login CSRF): a cross-site form cannot send application/json
// without a preflight, and a browser names the page's origin in Origin and
// Sec-Fetch-Site. The CLI sends neither header.
func (s *Server) checkLoginOrigin(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return httpError(http.StatusUnsupportedMediaType, "a login is a JSON body: send Content-Type: application/json")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return httpError(http.StatusForbidden, "login refused: the request comes from another site (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "https://"+r.Host && (s.cfg.PublicURL == "" || origin != strings.TrimRight(s.cfg.PublicURL, "/")) {
		return httpError(http.StatusForbidden, "login refused: the request comes from another origin")
	}
	return nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	u, token, exp, err := s.loginRequest(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: token, ExpiresAt: exp, User: userView(u)})
	return nil
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.DeleteToken(c.tokenHash); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "auth.logout", "", "success", c.source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
	return nil
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, userView(callerOf(r).user))
	return nil
}

func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	var req api.ChangePasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := callerOf(r)
	if len(req.New) < minPasswordLen {
		return httpError(http.StatusBadRequest, "the new password needs at least %d characters", minPasswordLen)
	}
	if err := s.checkCurrentPassword(r.Context(), c, req.Current, "user.password"); err != nil {
		return err
	}
	h, err := hashPassword(req.New)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.user.ID)
		if err != nil {
			return err
		}
		u.PasswordHash, u.MustChangePassword = h, false
		if err := tx.PutUser(u); err != nil {
			return err
		}
		// Every other login of the user ends: whoever had the old password
		// keeps nothing. The token that made the change stays.
		n, err := revokeTokens(tx, u.ID, c.tokenHash)
		if err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "user.password", c.user.Name, "success", c.source, fmt.Sprintf("%d other tokens revoked", n))
	})
	if err != nil {
		return err
	}
	s.dropInitialPassword(c.user.Name)
	s.live.endUserSessions(r.Context(), c.user.ID, "password changed")
	writeJSON(w, http.StatusOK, map[string]string{"status": "password changed"})
	return nil
}

func (s *Server) handleMFAEnroll(w http.ResponseWriter, r *http.Request) error {
	var req api.MFAEnrollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := callerOf(r)
	if c.user.MFASecret != "" {
		return httpError(http.StatusConflict, "MFA is already enrolled; an admin can reset it with pamd users reset-mfa")
	}
	// A token alone (a session left open, a stolen cookie) must not bind
	// an authenticator of the thief's: enrolment asks for the password.
	if err := s.checkCurrentPassword(r.Context(), c, req.Password, "mfa.enroll"); err != nil {
		return err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "pamd", AccountName: c.user.Name, Period: totpPeriod})
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.user.ID)
		if err != nil {
			return err
		}
		u.MFAPending = key.Secret()
		return tx.PutUser(u)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.MFAEnrollResponse{Secret: key.Secret(), URI: key.URL(), QRCode: qrDataURL(key.URL())})
	return nil
}

// checkCurrentPassword asks a logged-in caller for their password again,
// throttled and hashed in a slot like a login.
func (s *Server) checkCurrentPassword(ctx context.Context, c *caller, password, action string) error {
	key := "reauth:" + c.user.ID
	if wait := max(s.throttle.wait(key, perNameAndSource), s.throttle.wait("login-src:"+c.source, perSource)); wait > 0 {
		return tooMany("password checks", wait)
	}
	if err := s.hashSlots.acquire(ctx); err != nil {
		return err
	}
	ok := checkPassword(c.user.PasswordHash, password)
	s.hashSlots.release()
	if !ok {
		s.throttle.fail(key)
		s.throttle.fail("login-src:" + c.source)
		s.auditEvent(c.user.Name, action, c.user.Name, "failure", c.source, "wrong current password")
		return httpError(http.StatusUnauthorized, "the current password is wrong")
	}
	s.throttle.succeed(key)
	return nil
}

func (s *Server) handleMFAConfirm(w http.ResponseWriter, r *http.Request) error {
	var req api.MFAConfirmRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := callerOf(r)
	var ok bool
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.user.ID)
		if err != nil {
			return err
		}
		if u.MFAPending == "" {
			return httpError(http.StatusBadRequest, "no MFA enrollment in progress: run pamd mfa enroll")
		}
		var step uint64
		if ok = acceptCode(u.MFAPending, strings.TrimSpace(req.Code), time.Now(), &step); !ok {
			return appendAudit(tx, u.Name, "mfa.enroll", u.Name, "failure", c.source, "wrong confirmation code")
		}
		u.MFASecret, u.MFAPending, u.MFALastStep = u.MFAPending, "", step
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return appendAudit(tx, u.Name, "mfa.enroll", u.Name, "success", c.source, "")
	})
	if err != nil {
		return err
	}
	if !ok {
		return httpError(http.StatusUnauthorized, "that code does not match; check the authenticator app's clock and try again")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "MFA enrolled"})
	return nil
}

func userView(u *store.User) api.User {
	v := api.User{Name: u.Name, Roles: u.Roles, MFAEnabled: u.MFASecret != "", Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt}
	if time.Now().Before(u.LockedUntil) {
		v.LockedUntil = u.LockedUntil
	}
	return v
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	var out []api.User
	err := s.st.View(func(tx *store.Tx) error {
		users, err := tx.Users()
		for _, u := range users {
			out = append(out, userView(u))
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("user", req.Name); err != nil {
		return err
	}
	if len(req.Roles) == 0 {
		req.Roles = []string{"user"}
	}
	c := callerOf(r)
	password := randomPassword()
	h, err := hashPassword(password)
	if err != nil {
		return err
	}
	u := &store.User{ID: store.NewID(), Name: req.Name, Roles: req.Roles, PasswordHash: h, MustChangePassword: true, CreatedAt: time.Now().UTC()}
	err = s.st.Update(func(tx *store.Tx) error {
		for _, role := range req.Roles {
			if _, err := tx.RoleByName(role); err != nil {
				return httpError(http.StatusBadRequest, "no role named %q (see pamd roles list)", role)
			}
		}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "user.create", u.Name, "success", c.source, "roles: "+strings.Join(u.Roles, ","))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.CreateUserResponse{User: userView(u), Password: password})
	return nil
}

func (s *Server) handleSetDisabled(disabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := callerOf(r)
		name := r.PathValue("name")
		if disabled && name == c.user.Name {
			return httpError(http.StatusBadRequest, "you cannot disable yourself")
		}
		var target *store.User
		err := s.st.Update(func(tx *store.Tx) error {
			u, err := tx.UserByName(name)
			if err != nil {
				return err
			}
			u.Disabled = disabled
			target = u
			if err := tx.PutUser(u); err != nil {
				return err
			}
			if disabled {
				if _, err := revokeTokens(tx, u.ID, ""); err != nil {
					return err
				}
			}
			action := "user.enable"
			if disabled {
				action = "user.disable"
			}
			return appendAudit(tx, c.user.Name, action, name, "success", c.source, "")
		})
		if err != nil {
			return err
		}
		if disabled {
			s.live.endUserSessions(r.Context(), target.ID, "user disabled by "+c.user.Name)
		}
		writeJSON(w, http.StatusOK, userView(target))
		return nil
	}
}

func (s *Server) handleResetMFA(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	name := r.PathValue("name")
	var target *store.User
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		u.MFASecret, u.MFAPending, u.MFALastStep = "", "", 0
		target = u
		if err := tx.PutUser(u); err != nil {
			return err
		}
		n, err := revokeTokens(tx, u.ID, "")
		if err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "user.reset_mfa", name, "success", c.source, fmt.Sprintf("%d tokens revoked", n))
	})
	if err != nil {
		return err
	}
	s.live.endUserSessions(r.Context(), target.ID, "MFA reset by "+c.user.Name)
	writeJSON(w, http.StatusOK, userView(target))
	return nil
}

// handleListTokens lists a user's API tokens; admins see anyone's, a user
// their own.
func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	name := r.PathValue("name")
	if name != c.user.Name && !c.isAdmin() {
		return httpError(http.StatusForbidden, "permission denied: only admins list other users' tokens")
	}
	out := []api.TokenInfo{}
	now := time.Now()
	err := s.st.View(func(tx *store.Tx) error {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		all, err := tx.Tokens()
		for _, t := range all {
			if t.UserID == u.ID && now.Before(t.ExpiresAt) {
				out = append(out, api.TokenInfo{ID: tokenID(t.Hash), Source: t.Source, CreatedAt: t.CreatedAt,
					ExpiresAt: t.ExpiresAt, Current: t.Hash == c.tokenHash})
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleRevokeTokens ends every API token of a user and their live
// sessions (for a lost laptop or a leaked token). The caller's own token
// is kept when they revoke their own.
func (s *Server) handleRevokeTokens(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	name := r.PathValue("name")
	if name != c.user.Name && !c.isAdmin() {
		return httpError(http.StatusForbidden, "permission denied: only admins revoke other users' tokens")
	}
	var (
		n      int
		target *store.User
	)
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if target, err = tx.UserByName(name); err != nil {
			return err
		}
		if n, err = revokeTokens(tx, target.ID, c.tokenHash); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "user.revoke_tokens", name, "success", c.source, fmt.Sprintf("%d tokens revoked", n))
	})
	if err != nil {
		return err
	}
	ended := 0
	if target.ID != c.user.ID {
		ended = s.live.endUserSessions(r.Context(), target.ID, "tokens revoked by "+c.user.Name)
	}
	writeJSON(w, http.StatusOK, api.RevokeTokensResponse{Revoked: n, SessionsEnded: ended})
	return nil
}

func roleView(r *store.Role) api.Role {
	v := api.Role{Name: r.Name, Description: r.Description, Allow: r.Allow, RequireReason: r.RequireReason, Builtin: r.Builtin}
	if v.Allow == nil {
		v.Allow = []string{}
	}
	if r.MaxDuration > 0 {
		v.MaxDuration = r.MaxDuration.String()
	}
	return v
}

func (s *Server) handleListRoles(w http.ResponseWriter, r *http.Request) error {
	var out []api.Role
	err := s.st.View(func(tx *store.Tx) error {
		roles, err := tx.Roles()
		for _, role := range roles {
			out = append(out, roleView(role))
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateRole(w http.ResponseWriter, r *http.Request) error {
	var req api.Role
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("role", req.Name); err != nil {
		return err
	}
	role := &store.Role{ID: store.NewID(), Name: req.Name, Description: req.Description, RequireReason: req.RequireReason, CreatedAt: time.Now().UTC()}
	for _, p := range req.Allow {
		if err := validPattern(p); err != nil {
			return httpError(http.StatusBadRequest, "--allow %q: %v", p, err)
		}
		role.Allow = append(role.Allow, p)
	}
	role.MaxDuration = defaultMaxDuration
	if req.MaxDuration != "" {
		d, err := time.ParseDuration(req.MaxDuration)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			return httpError(http.StatusBadRequest, "max duration %q: want a duration such as 30m or 4h, at most 168h", req.MaxDuration)
		}
		role.MaxDuration = d
	}
	c := callerOf(r)
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.CreateRole(role); err != nil {
			return err
		}
		return appendAudit(tx, c.user.Name, "role.create", role.Name, "success", c.source, "allow: "+strings.Join(role.Allow, ","))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, roleView(role))
	return nil
}

func (s *Server) handleDeleteRole(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	name := r.PathValue("name")
	var holders []string
	err := s.st.Update(func(tx *store.Tx) error {
		role, err := tx.RoleByName(name)
		if err != nil {
			return err
		}
		if role.Builtin {
			return httpError(http.StatusBadRequest, "role %s is built in and cannot be removed", name)
		}
		if err := tx.DeleteRole(role); err != nil {
			return err
		}
		// Its holders' sessions were granted by it: they end, and their
		// tokens with them.
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			if slices.Contains(u.Roles, name) {
				holders = append(holders, u.ID)
				if _, err := revokeTokens(tx, u.ID, c.tokenHash); err != nil {
					return err
				}
			}
		}
		return appendAudit(tx, c.user.Name, "role.delete", name, "success", c.source, fmt.Sprintf("%d holders' tokens revoked", len(holders)))
	})
	if err != nil {
		return err
	}
	for _, id := range holders {
		s.live.endUserSessions(r.Context(), id, "role "+name+" removed by "+c.user.Name)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

// Gateway enrollment tokens: "pamdgw1." + base64url(JSON). Only the SHA-256
// of the secret is stored.
type enrollToken struct {
	URL         string `json:"u"`
	Fingerprint string `json:"f"`
	Secret      string `json:"s"`
	Name        string `json:"n"`
}

const enrollTokenPrefix = "pamdgw1."

func (s *Server) handleGatewayToken(w http.ResponseWriter, r *http.Request) error {
	var req api.GatewayTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := validName("gateway", req.Name); err != nil {
		return err
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return httpError(http.StatusBadRequest, "ttl %q: want a duration up to 24h", req.TTL)
		}
		ttl = d
	}
	c := callerOf(r)
	if err := s.checkGatewayName(req.Name, req.Replace); err != nil {
		s.auditEvent(c.user.Name, "gateway.token", req.Name, "failure", c.source, err.Error())
		return err
	}
	token, exp, err := s.newEnrollToken(req.Name, c.user.Name, s.publicURL(r), ttl, req.Replace)
	if err != nil {
		return err
	}
	detail := "expires " + exp.Format(time.RFC3339)
	if req.Replace {
		detail += "; replaces the enrolled gateway of that name"
	}
	s.auditEvent(c.user.Name, "gateway.token", req.Name, "success", c.source, detail)
	writeJSON(w, http.StatusCreated, api.GatewayTokenResponse{
		Token: token, ExpiresAt: exp,
		Command: "pamd gateway --token " + token + " --data-dir /var/lib/pamd-gateway",
	})
	return nil
}

func (s *Server) newEnrollToken(name, by, url string, ttl time.Duration, replace bool) (string, time.Time, error) {
	secret := randomSecret(32)
	now := time.Now().UTC()
	e := &store.EnrollToken{Hash: hashToken(secret), GatewayName: name, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl), Replace: replace}
	if err := s.st.Update(func(tx *store.Tx) error { return tx.PutEnrollToken(e) }); err != nil {
		return "", time.Time{}, err
	}
	b, _ := json.Marshal(enrollToken{URL: url, Fingerprint: s.pin, Secret: secret, Name: name})
	return enrollTokenPrefix + base64.RawURLEncoding.EncodeToString(b), e.ExpiresAt, nil
}

func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return "https://" + r.Host
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	var req api.EnrollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var tok enrollToken
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(req.Token, enrollTokenPrefix))
	if !strings.HasPrefix(req.Token, enrollTokenPrefix) || err != nil || json.Unmarshal(raw, &tok) != nil || tok.Secret == "" {
		return httpError(http.StatusBadRequest, "malformed enrollment token")
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return httpError(http.StatusBadRequest, "bad certificate request: %v", err)
	}
	resp, err := s.enroll(tok.Secret, csr.PublicKey, sourceOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// enroll spends a one-time token and issues the gateway's certificate.
func (s *Server) enroll(secret string, pub any, source string) (*api.EnrollResponse, error) {
	now := time.Now().UTC()
	var resp *api.EnrollResponse
	var refusal error
	err := s.st.Update(func(tx *store.Tx) error {
		e, err := tx.EnrollToken(hashToken(secret))
		switch {
		case err != nil || subtle.ConstantTimeCompare([]byte(e.Hash), []byte(hashToken(secret))) != 1:
			refusal = httpError(http.StatusUnauthorized, "enrollment token is not valid")
		case !e.UsedAt.IsZero():
			refusal = httpError(http.StatusUnauthorized, "enrollment token was already used: create a new one with pamd gateways token")
		case now.After(e.ExpiresAt):
			refusal = httpError(http.StatusUnauthorized, "enrollment token expired at %s: create a new one with pamd gateways token", e.ExpiresAt.Format(time.RFC3339))
		}
		name := ""
		if e != nil {
			name = e.GatewayName
		}
		if refusal != nil {
			return appendAudit(tx, "gateway:"+name, "gateway.enroll", name, "failure", source, refusal.Error())
		}
		g, err := tx.GatewayByName(e.GatewayName)
		switch {
		case errors.Is(err, store.ErrNotFound):
			g = &store.Gateway{ID: store.NewID(), Name: e.GatewayName, CreatedAt: now}
			if err := tx.CreateGateway(g); err != nil {
				return err
			}
		case err != nil:
			return err
		case !e.Replace: // enrolled since the token was made
			refusal = httpError(http.StatusConflict, "gateway %s is already enrolled: create a token with pamd gateways token --name %s --replace to enroll a new one in its place", name, name)
			return appendAudit(tx, "gateway:"+name, "gateway.enroll", name, "failure", source, refusal.Error())
		}
		der, cert, err := s.ca.issueGateway(e.GatewayName, pub, s.cfg.GatewayCertLifetime)
		if err != nil {
			return err
		}
		// The certificate of a gateway this one replaces stops working now.
		g.CertSerial, g.PrevSerial, g.CertExpiresAt, g.RevokedAt = cert.SerialNumber.String(), "", cert.NotAfter, time.Time{}
		g.EnrolledAt = now
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		e.UsedAt = now
		if err := tx.PutEnrollToken(e); err != nil {
			return err
		}
		resp = &api.EnrollResponse{Name: g.Name, Certificate: string(pki.EncodeCert(der)), CA: string(s.ca.certPEM)}
		return appendAudit(tx, "gateway:"+g.Name, "gateway.enroll", g.Name, "success", source, "")
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	s.hub.recheck(resp.Name, "replaced by a newly enrolled gateway")
	return resp, nil
}

// EnrollLocal enrolls an in-process gateway (pamd dev) without a network
// round trip, returning the certificate and CA in PEM.
func (s *Server) EnrollLocal(name string, pub any) (certPEM, caPEM []byte, err error) {
	token, _, err := s.newEnrollToken(name, "system", "", time.Minute, true)
	if err != nil {
		return nil, nil, err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, enrollTokenPrefix))
	var tok enrollToken
	json.Unmarshal(raw, &tok)
	resp, err := s.enroll(tok.Secret, pub, "local")
	if err != nil {
		return nil, nil, err
	}
	return []byte(resp.Certificate), []byte(resp.CA), nil
}
