package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

func (s *API) handleInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Info{Version: s.cfg.Version, CAFingerprint: s.pin(), ResourceCA: string(s.ca.ResourceCertPEM())})
	return nil
}

// loginForAPI checks a login request and words its failure for the API.
func (s *API) loginForAPI(ctx context.Context, req api.LoginRequest, source string) (*store.User, error) {
	u, err := s.auth.Login(ctx, req.Username, req.Password, req.TOTP, source)
	var mfa *auth.MFARequired
	switch {
	case errors.As(err, &mfa):
		return nil, &api.Error{Status: http.StatusUnauthorized, Code: api.CodeMFARequired, Message: err.Error()}
	case errors.Is(err, auth.ErrLoginFailed), errors.Is(err, auth.ErrBadCode):
		return nil, api.Errorf(http.StatusUnauthorized, "%s", err.Error())
	}
	return u, err
}

// loginRequest reads a login request, checks it and issues a token.
func (s *API) loginRequest(r *http.Request) (*store.User, string, time.Time, error) {
	if err := s.checkLoginOrigin(r); err != nil {
		return nil, "", time.Time{}, err
	}
	var req api.LoginRequest
	if err := decode(r, &req); err != nil {
		return nil, "", time.Time{}, err
	}
	u, err := s.loginForAPI(r.Context(), req, auth.SourceOf(r))
	if err != nil {
		return nil, "", time.Time{}, err
	}
	token, exp, err := s.auth.IssueToken(u, auth.SourceOf(r))
	return u, token, exp, err
}

// checkLoginOrigin refuses a login a browser sends on another site's
// behalf (login CSRF): a cross-site form cannot send application/json
// without a preflight, and a browser names the page's origin in Origin and
// Sec-Fetch-Site. The CLI sends neither header.
func (s *API) checkLoginOrigin(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return api.Errorf(http.StatusUnsupportedMediaType, "a login is a JSON body: send Content-Type: application/json")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return api.Errorf(http.StatusForbidden, "login refused: the request comes from another site (Sec-Fetch-Site: %s)", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "https://"+r.Host && (s.cfg.PublicURL == "" || origin != strings.TrimRight(s.cfg.PublicURL, "/")) {
		return api.Errorf(http.StatusForbidden, "login refused: the request comes from another origin")
	}
	return nil
}

func (s *API) handleLogin(w http.ResponseWriter, r *http.Request) error {
	u, token, exp, err := s.loginRequest(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: token, ExpiresAt: exp, User: userView(u)})
	return nil
}

func (s *API) handleLogout(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.DeleteToken(c.TokenHash); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "auth.logout", "", "success", c.Source, "")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
	return nil
}

func (s *API) handleWhoami(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, userView(auth.CallerOf(r).User))
	return nil
}

func (s *API) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	var req api.ChangePasswordRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	if len(req.New) < auth.MinPasswordLen {
		return api.Errorf(http.StatusBadRequest, "the new password needs at least %d characters", auth.MinPasswordLen)
	}
	if err := s.auth.ConfirmPassword(r.Context(), c, req.Current, "user.password"); err != nil {
		return err
	}
	h, err := auth.HashPassword(req.New)
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.User.ID)
		if err != nil {
			return err
		}
		u.PasswordHash, u.MustChangePassword = h, false
		if err := tx.PutUser(u); err != nil {
			return err
		}
		// Every other login of the user ends: whoever had the old password
		// keeps nothing. The token that made the change stays.
		n, err := auth.RevokeTokens(tx, u.ID, c.TokenHash)
		if err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.password", c.User.Name, "success", c.Source, fmt.Sprintf("%d other tokens revoked", n))
	})
	if err != nil {
		return err
	}
	s.auth.DropInitialPassword(c.User.Name)
	s.live.EndUser(r.Context(), c.User.ID, "password changed")
	writeJSON(w, http.StatusOK, map[string]string{"status": "password changed"})
	return nil
}

func (s *API) handleMFAEnroll(w http.ResponseWriter, r *http.Request) error {
	var req api.MFAEnrollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	if c.User.MFASecret != "" {
		return api.Errorf(http.StatusConflict, "MFA is already enrolled; an admin can reset it with pamd users reset-mfa")
	}
	// A token alone (a session left open, a stolen cookie) must not bind
	// an authenticator of the thief's: enrolment asks for the password.
	if err := s.auth.ConfirmPassword(r.Context(), c, req.Password, "mfa.enroll"); err != nil {
		return err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "pamd", AccountName: c.User.Name, Period: auth.TOTPPeriod})
	if err != nil {
		return err
	}
	err = s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.User.ID)
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

func (s *API) handleMFAConfirm(w http.ResponseWriter, r *http.Request) error {
	var req api.MFAConfirmRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	var ok bool
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.User(c.User.ID)
		if err != nil {
			return err
		}
		if u.MFAPending == "" {
			return api.Errorf(http.StatusBadRequest, "no MFA enrollment in progress: run pamd mfa enroll")
		}
		var step uint64
		if ok = auth.AcceptCode(u.MFAPending, strings.TrimSpace(req.Code), time.Now(), &step); !ok {
			return audit.Append(tx, u.Name, "mfa.enroll", u.Name, "failure", c.Source, "wrong confirmation code")
		}
		u.MFASecret, u.MFAPending, u.MFALastStep = u.MFAPending, "", step
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return audit.Append(tx, u.Name, "mfa.enroll", u.Name, "success", c.Source, "")
	})
	if err != nil {
		return err
	}
	if !ok {
		return api.Errorf(http.StatusUnauthorized, "that code does not match; check the authenticator app's clock and try again")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "MFA enrolled"})
	return nil
}

func userView(u *store.User) api.User {
	v := api.User{Name: u.Name, Roles: u.Roles, MFAEnabled: u.MFASecret != "", Disabled: u.Disabled,
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt, SSO: u.IsSSO()}
	if time.Now().Before(u.LockedUntil) {
		v.LockedUntil = u.LockedUntil
	}
	return v
}

func (s *API) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	out := []api.User{}
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

func (s *API) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := api.ValidName("user", req.Name); err != nil {
		return err
	}
	if len(req.Roles) == 0 {
		req.Roles = []string{"user"}
	}
	c := auth.CallerOf(r)
	password := auth.RandomPassword()
	h, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	u := &store.User{ID: store.NewID(), Name: req.Name, Roles: req.Roles, PasswordHash: h, MustChangePassword: true, CreatedAt: time.Now().UTC()}
	err = s.st.Update(func(tx *store.Tx) error {
		for _, role := range req.Roles {
			if _, err := tx.RoleByName(role); err != nil {
				return api.Errorf(http.StatusBadRequest, "no role named %q (see pamd roles list)", role)
			}
		}
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.create", u.Name, "success", c.Source, "roles: "+strings.Join(u.Roles, ","))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.CreateUserResponse{User: userView(u), Password: password})
	return nil
}

func (s *API) handleSetDisabled(disabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := auth.CallerOf(r)
		name := r.PathValue("name")
		if disabled && name == c.User.Name {
			return api.Errorf(http.StatusBadRequest, "you cannot disable yourself")
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
				if _, err := auth.RevokeTokens(tx, u.ID, ""); err != nil {
					return err
				}
			}
			action := "user.enable"
			if disabled {
				action = "user.disable"
			}
			return audit.Append(tx, c.User.Name, action, name, "success", c.Source, "")
		})
		if err != nil {
			return err
		}
		if disabled {
			s.live.EndUser(r.Context(), target.ID, "user disabled by "+c.User.Name)
		}
		writeJSON(w, http.StatusOK, userView(target))
		return nil
	}
}

func (s *API) handleResetMFA(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
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
		n, err := auth.RevokeTokens(tx, u.ID, "")
		if err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.reset_mfa", name, "success", c.Source, fmt.Sprintf("%d tokens revoked", n))
	})
	if err != nil {
		return err
	}
	s.live.EndUser(r.Context(), target.ID, "MFA reset by "+c.User.Name)
	writeJSON(w, http.StatusOK, userView(target))
	return nil
}

// handleListTokens lists a user's API tokens; admins see anyone's, a user
// their own.
func (s *API) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	if name != c.User.Name && !c.IsAdmin() {
		return api.Errorf(http.StatusForbidden, "permission denied: only admins list other users' tokens")
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
				out = append(out, api.TokenInfo{ID: auth.TokenID(t.Hash), Source: t.Source, CreatedAt: t.CreatedAt,
					ExpiresAt: t.ExpiresAt, Current: t.Hash == c.TokenHash})
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
func (s *API) handleRevokeTokens(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	if name != c.User.Name && !c.IsAdmin() {
		return api.Errorf(http.StatusForbidden, "permission denied: only admins revoke other users' tokens")
	}
	var (
		n      int
		target *store.User
	)
	err := s.st.Update(func(tx *store.Tx) (err error) {
		if target, err = tx.UserByName(name); err != nil {
			return err
		}
		if n, err = auth.RevokeTokens(tx, target.ID, c.TokenHash); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "user.revoke_tokens", name, "success", c.Source, fmt.Sprintf("%d tokens revoked", n))
	})
	if err != nil {
		return err
	}
	ended := 0
	if target.ID != c.User.ID {
		ended = s.live.EndUser(r.Context(), target.ID, "tokens revoked by "+c.User.Name)
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
	v.Request, v.Approvers, v.Approvals = r.Request, r.Approvers, r.Approvals
	if v.Request == nil {
		v.Request = []string{}
	}
	if r.RequestTTL > 0 {
		v.RequestTTL = r.RequestTTL.String()
	}
	return v
}

func (s *API) handleListRoles(w http.ResponseWriter, r *http.Request) error {
	out := []api.Role{}
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

func (s *API) handleCreateRole(w http.ResponseWriter, r *http.Request) error {
	var req api.Role
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := api.ValidName("role", req.Name); err != nil {
		return err
	}
	if err := checkPatterns(req.Allow); err != nil {
		return err
	}
	role := &store.Role{ID: store.NewID(), Name: req.Name, Description: req.Description, Allow: req.Allow, RequireReason: req.RequireReason,
		MaxDuration: sessions.DefaultMaxDuration, CreatedAt: time.Now().UTC()}
	if req.MaxDuration != "" {
		d, err := parseMaxDuration(req.MaxDuration)
		if err != nil {
			return err
		}
		role.MaxDuration = d
	}
	if err := setRoleRequests(role, req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	err := s.st.Update(func(tx *store.Tx) error {
		if err := checkApprovers(tx, role.Approvers); err != nil {
			return err
		}
		if err := tx.CreateRole(role); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "role.create", role.Name, "success", c.Source, "allow: "+strings.Join(role.Allow, ",")+roleRequestsDetail(role))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, roleView(role))
	return nil
}

func (s *API) handleDeleteRole(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var ended []string
	err := s.st.Update(func(tx *store.Tx) error {
		role, err := tx.RoleByName(name)
		if err != nil {
			return err
		}
		if role.Builtin {
			return api.Errorf(http.StatusBadRequest, "role %s is built in and cannot be removed", name)
		}
		holders, err := holdersOf(tx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteRole(role); err != nil {
			return err
		}
		// Its holders are logged out, as when a role is taken from a user;
		// the sessions it granted end, unless another role of their user
		// grants them too.
		for _, id := range holders {
			if _, err := auth.RevokeTokens(tx, id, c.TokenHash); err != nil {
				return err
			}
		}
		if ended, err = ungranted(tx, holders...); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "role.delete", name, "success", c.Source, fmt.Sprintf("%d holders' tokens revoked, %d of their sessions no longer granted", len(holders), len(ended)))
	})
	if err != nil {
		return err
	}
	n := s.endSessions(r.Context(), ended, "role "+name+" removed by "+c.User.Name, c.User.Name)
	writeJSON(w, http.StatusOK, map[string]any{"status": "deleted", "sessions_ended": n})
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

func (s *API) handleGatewayToken(w http.ResponseWriter, r *http.Request) error {
	var req api.GatewayTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := api.ValidName("gateway", req.Name); err != nil {
		return err
	}
	if req.Group != "" {
		if err := api.ValidName("gateway group", req.Group); err != nil {
			return err
		}
	}
	ttl := time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return api.Errorf(http.StatusBadRequest, "ttl %q: want a duration up to 24h", req.TTL)
		}
		ttl = d
	}
	c := auth.CallerOf(r)
	if err := s.checkGatewayName(req.Name, req.Replace); err != nil {
		s.trail.Event(c.User.Name, "gateway.token", req.Name, "failure", c.Source, err.Error())
		return err
	}
	token, exp, err := s.newEnrollToken(req.Name, req.Group, c.User.Name, s.publicURL(r), ttl, req.Replace)
	if err != nil {
		return err
	}
	detail := "expires " + exp.Format(time.RFC3339)
	if req.Replace {
		detail += "; replaces the enrolled gateway of that name"
	}
	if req.Group != "" {
		detail += "; in group " + req.Group
	}
	s.trail.Event(c.User.Name, "gateway.token", req.Name, "success", c.Source, detail)
	writeJSON(w, http.StatusCreated, api.GatewayTokenResponse{
		Token: token, ExpiresAt: exp,
		Command: "pamd gateway --token " + token + " --data-dir /var/lib/pamd-gateway",
	})
	return nil
}

func (s *API) newEnrollToken(name, group, by, url string, ttl time.Duration, replace bool) (string, time.Time, error) {
	secret := auth.RandomSecret(32)
	now := time.Now().UTC()
	e := &store.EnrollToken{Hash: auth.HashToken(secret), GatewayName: name, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl), Replace: replace, Group: group}
	if err := s.st.Update(func(tx *store.Tx) error { return tx.PutEnrollToken(e) }); err != nil {
		return "", time.Time{}, err
	}
	b, _ := json.Marshal(enrollToken{URL: url, Fingerprint: s.pin(), Secret: secret, Name: name})
	return enrollTokenPrefix + base64.RawURLEncoding.EncodeToString(b), e.ExpiresAt, nil
}

func (s *API) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return "https://" + r.Host
}

func (s *API) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	var req api.EnrollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var tok enrollToken
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(req.Token, enrollTokenPrefix))
	if !strings.HasPrefix(req.Token, enrollTokenPrefix) || err != nil || json.Unmarshal(raw, &tok) != nil || tok.Secret == "" {
		return api.Errorf(http.StatusBadRequest, "malformed enrollment token")
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return api.Errorf(http.StatusBadRequest, "bad certificate request: %v", err)
	}
	resp, err := s.enroll(tok.Secret, csr.PublicKey, auth.SourceOf(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// enroll spends a one-time token and issues the gateway's certificate.
func (s *API) enroll(secret string, pub any, source string) (*api.EnrollResponse, error) {
	now := time.Now().UTC()
	var resp *api.EnrollResponse
	var refusal error
	err := s.st.Update(func(tx *store.Tx) error {
		e, err := tx.EnrollToken(auth.HashToken(secret))
		switch {
		case err != nil || subtle.ConstantTimeCompare([]byte(e.Hash), []byte(auth.HashToken(secret))) != 1:
			refusal = api.Errorf(http.StatusUnauthorized, "enrollment token is not valid")
		case !e.UsedAt.IsZero():
			refusal = api.Errorf(http.StatusUnauthorized, "enrollment token was already used: create a new one with pamd gateways token")
		case now.After(e.ExpiresAt):
			refusal = api.Errorf(http.StatusUnauthorized, "enrollment token expired at %s: create a new one with pamd gateways token", e.ExpiresAt.Format(time.RFC3339))
		}
		name := ""
		if e != nil {
			name = e.GatewayName
		}
		if refusal != nil {
			return audit.Append(tx, "gateway:"+name, "gateway.enroll", name, "failure", source, refusal.Error())
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
			refusal = api.Errorf(http.StatusConflict, "gateway %s is already enrolled: create a token with pamd gateways token --name %s --replace to enroll a new one in its place", name, name)
			return audit.Append(tx, "gateway:"+name, "gateway.enroll", name, "failure", source, refusal.Error())
		}
		der, cert, err := s.ca.IssueGateway(tx, e.GatewayName, pub, s.cfg.GatewayCertLifetime)
		if err != nil {
			return err
		}
		// The certificate of a gateway this one replaces stops working now.
		g.CertSerial, g.PrevSerial, g.CertExpiresAt, g.RevokedAt = cert.SerialNumber.String(), "", cert.NotAfter, time.Time{}
		g.EnrolledAt = now
		groupNote := enrolledGroup(e, g)
		if err := tx.PutGateway(g); err != nil {
			return err
		}
		e.UsedAt = now
		if err := tx.PutEnrollToken(e); err != nil {
			return err
		}
		resp = &api.EnrollResponse{Name: g.Name, Certificate: string(pki.EncodeCert(der)), CA: string(s.ca.CertPEM())}
		return audit.Append(tx, "gateway:"+g.Name, "gateway.enroll", g.Name, "success", source, groupNote)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	s.hub.Recheck(resp.Name, "replaced by a newly enrolled gateway")
	return resp, nil
}

// EnrollLocal enrolls an in-process gateway (pamd dev) without a network
// round trip, returning the certificate and CA in PEM.
func (s *API) EnrollLocal(name string, pub any) (certPEM, caPEM []byte, err error) {
	token, _, err := s.newEnrollToken(name, "", "system", "", time.Minute, true)
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
