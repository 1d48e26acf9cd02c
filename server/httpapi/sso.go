package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/sso"
	"github.com/pamd/pamd/store"
)

// ssoCookie binds a console SSO login to the browser that started it. It
// is SameSite=Lax, not Strict: the provider's redirect back is a
// cross-site navigation, on which a Strict cookie is not sent.
const ssoCookie = "__Host-pamd_sso"

func (s *API) handleSSOStatus(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.SSOStatus{Enabled: s.cfg.SSO != nil && s.cfg.SSO.Enabled()})
	return nil
}

func (s *API) ssoService() (*sso.Service, error) {
	if s.cfg.SSO == nil {
		return nil, sso.ErrOff
	}
	return s.cfg.SSO, nil
}

func (s *API) handleGetSSO(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	c, err := svc.Settings()
	if errors.Is(err, sso.ErrOff) {
		writeJSON(w, http.StatusOK, api.SSOView{Enabled: false, ConsoleRedirectURI: s.publicURL(r) + sso.ConsolePath, CLIRedirectURI: sso.CLIRedirectURI})
		return nil
	}
	if err != nil {
		return err
	}
	v := sso.View(c)
	v.ConsoleRedirectURI = s.publicURL(r) + sso.ConsolePath
	writeJSON(w, http.StatusOK, v)
	return nil
}

// handleSetSSO stores the SSO settings once the provider's discovery
// answers and every role named exists.
func (s *API) handleSetSSO(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	var req api.SSOSettings
	if err := decode(r, &req); err != nil {
		return err
	}
	old, err := svc.Settings()
	if err != nil && !errors.Is(err, sso.ErrOff) {
		return err
	}
	c, err := sso.Parse(req, old)
	if err != nil {
		return err
	}
	caller := auth.CallerOf(r)
	if err := svc.Check(r.Context(), c); err != nil {
		s.trail.Event(caller.User.Name, "sso.set", c.Issuer, "failure", caller.Source, err.Error())
		return api.Errorf(http.StatusBadGateway, "%s", err.Error())
	}
	c.UpdatedAt, c.UpdatedBy = time.Now().UTC(), caller.User.Name
	err = s.st.Update(func(tx *store.Tx) error {
		roles := []string{}
		if c.DefaultRole != "" {
			roles = append(roles, c.DefaultRole)
		}
		for _, m := range c.Map {
			roles = append(roles, m.Role)
		}
		for _, role := range roles {
			if _, err := tx.RoleByName(role); err != nil {
				return api.Errorf(http.StatusBadRequest, "no role named %q (see pamd roles list)", role)
			}
		}
		if err := tx.PutSSOConfig(c); err != nil {
			return err
		}
		detail := fmt.Sprintf("client %s; %d group mappings; default role %q; MFA claim %v (max age %s)", c.ClientID, len(c.Map), c.DefaultRole, c.RequireMFAClaim, c.MFAMaxAge)
		return audit.Append(tx, caller.User.Name, "sso.set", c.Issuer, "success", caller.Source, detail)
	})
	if err != nil {
		return err
	}
	v := sso.View(c)
	v.ConsoleRedirectURI = s.publicURL(r) + sso.ConsolePath
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *API) handleDisableSSO(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	err := s.st.Update(func(tx *store.Tx) error {
		old, err := tx.SSOConfig()
		if errors.Is(err, store.ErrNotFound) {
			return api.Errorf(http.StatusNotFound, "SSO is not configured")
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteSSOConfig(); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "sso.disable", old.Issuer, "success", c.Source, "SSO users cannot log in until it is set again")
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "SSO disabled"})
	return nil
}

// handleSSOLogin starts the console's login: a cookie binds it to this
// browser, and the browser goes to the provider.
func (s *API) handleSSOLogin(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		s.consoleError(w, r, err)
		return nil
	}
	binding := auth.RandomSecret(32)
	authURL, _, err := svc.Begin(r.Context(), sso.BeginRequest{RedirectURI: s.publicURL(r) + sso.ConsolePath, Binding: sso.BindingOf(binding), Source: auth.SourceOf(r)})
	if err != nil {
		s.consoleError(w, r, err)
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: binding, Path: "/", MaxAge: 600,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// handleSSOCallback is where the provider sends the console's browser
// back: the login ends as a password login does, with the session cookie
// (the page then learns its CSRF token from /api/v1/ui/session).
func (s *API) handleSSOCallback(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		s.consoleError(w, r, err)
		return nil
	}
	q := r.URL.Query()
	binding := ""
	if ck, err := r.Cookie(ssoCookie); err == nil {
		binding = sso.BindingOf(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if binding == "" {
		binding = "none" // a pending console login never matches it
	}
	req := sso.FinishRequest{State: q.Get("state"), Code: q.Get("code"), Binding: binding, Error: q.Get("error"), ErrorDescription: q.Get("error_description")}
	token, exp, _, err := s.ssoLogin(r, svc, req)
	if err != nil {
		s.consoleError(w, r, err)
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// ssoErrorCookie carries a failed console login's reason to the login
// page, which reads and clears it. A cookie, not the URL: a link from
// anywhere could put any text on the login page; this cookie only the
// server can set (__Host-).
const ssoErrorCookie = "__Host-pamd_sso_error"

// consoleError sends the browser back to the login page with err shown.
func (s *API) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	msg := "SSO login failed: internal error (see the server log)"
	var ae *api.Error
	if errors.As(err, &ae) {
		msg = ae.Message
	} else {
		s.log.Error("sso login failed", "err", err)
	}
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	http.SetCookie(w, &http.Cookie{Name: ssoErrorCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/#/login", http.StatusSeeOther)
}

// ssoLogin completes a login, ends the sessions the roles it lost no
// longer grant, and issues the token.
func (s *API) ssoLogin(r *http.Request, svc *sso.Service, req sso.FinishRequest) (string, time.Time, *store.User, error) {
	source := auth.SourceOf(r)
	out, err := svc.Complete(r.Context(), req, source)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	return s.finishSSOLogin(r, out)
}

// finishSSOLogin ends the sessions the roles a login lost no longer grant,
// and issues its token.
func (s *API) finishSSOLogin(r *http.Request, out *sso.Outcome) (string, time.Time, *store.User, error) {
	source := auth.SourceOf(r)
	if len(out.Removed) > 0 {
		var ended []string
		if err := s.st.View(func(tx *store.Tx) (err error) { ended, err = ungranted(tx, out.User.ID); return err }); err != nil {
			return "", time.Time{}, nil, err
		}
		s.endSessions(r.Context(), ended, "role "+strings.Join(out.Removed, ", ")+" lost at SSO login", "sso:"+out.User.Name)
	}
	token, exp, err := s.auth.IssueSSOToken(out.User, source, out.MFAAt)
	return token, exp, out.User, err
}

// handleSSOCLIBegin starts pamd login --sso: the CLI listens on a
// loopback redirect and keeps its PKCE verifier.
func (s *API) handleSSOCLIBegin(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	if err := s.checkLoginOrigin(r); err != nil {
		return err
	}
	var req api.SSOBeginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	authURL, state, err := svc.Begin(r.Context(), sso.BeginRequest{RedirectURI: req.RedirectURI, CodeChallenge: req.CodeChallenge, Source: auth.SourceOf(r)})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.SSOBeginResponse{AuthURL: authURL, State: state})
	return nil
}

// handleSSOCLIFinish takes what the provider sent to the CLI's loopback
// redirect, does the exchange, and answers as a password login does.
func (s *API) handleSSOCLIFinish(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	if err := s.checkLoginOrigin(r); err != nil {
		return err
	}
	var req api.SSOFinishRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.State == "" {
		return api.Errorf(http.StatusBadRequest, "state: missing")
	}
	token, exp, u, err := s.ssoLogin(r, svc, sso.FinishRequest{State: req.State, Code: req.Code, Verifier: req.CodeVerifier,
		Error: req.Error, ErrorDescription: req.ErrorDescription})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LoginResponse{Token: token, ExpiresAt: exp, User: userView(u)})
	return nil
}

// handleSyncUser re-applies the group mapping to an SSO user's last
// groups and ends their tokens and sessions: their next use needs a new
// SSO login, where the provider's groups count again.
func (s *API) handleSyncUser(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	c := auth.CallerOf(r)
	name := r.PathValue("name")
	var out *sso.Outcome
	err = s.st.Update(func(tx *store.Tx) error {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		out, err = svc.Sync(tx, u, c.User.Name, c.Source)
		return err
	})
	if err != nil {
		return err
	}
	n := s.live.EndUser(r.Context(), out.User.ID, "synced by "+c.User.Name)
	writeJSON(w, http.StatusOK, api.UserSync{User: userView(out.User), Added: out.Added, Removed: out.Removed, TokensRevoked: out.Revoked, SessionsEnded: n})
	return nil
}

// providerMFA says whether c's SSO login proved a second factor recently
// enough to stand for a TOTP code; a code given is checked instead.
func (s *API) providerMFA(c *auth.Caller, totp string) bool {
	return totp == "" && s.cfg.SSO != nil && s.cfg.SSO.MFAFresh(c.MFAAt)
}

// ssoMFAMissing tells an SSO user without a TOTP how to get a fresh MFA.
func (s *API) ssoMFAMissing(target string) string {
	if s.cfg.SSO == nil {
		return "account " + target + " requires MFA: SSO is off, and you have no pamd MFA"
	}
	return fmt.Sprintf("account %s requires MFA: your SSO login shows none in the last %s; log in again (pamd login --sso, or the console's Sign in with SSO) and pass your provider's second factor", target, s.cfg.SSO.MFAMaxAge())
}

// handleSSODevice starts pamd login --sso --device.
func (s *API) handleSSODevice(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	if err := s.checkLoginOrigin(r); err != nil {
		return err
	}
	var req struct{}
	if err := decode(r, &req); err != nil {
		return err
	}
	d, err := svc.DeviceBegin(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.SSODeviceStart{Handle: d.Handle, UserCode: d.UserCode, VerificationURI: d.VerificationURI,
		VerificationURIComplete: d.VerificationURIComplete, ExpiresAt: d.Expires})
	return nil
}

// handleSSODevicePoll waits a while for the person to finish at the
// provider; once they did, it answers as a password login does.
func (s *API) handleSSODevicePoll(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.ssoService()
	if err != nil {
		return err
	}
	if err := s.checkLoginOrigin(r); err != nil {
		return err
	}
	var req api.SSODevicePollRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := svc.CompleteDevice(r.Context(), req.Handle, auth.SourceOf(r))
	if err != nil {
		return err
	}
	if out == nil {
		writeJSON(w, http.StatusOK, api.SSODevicePoll{Pending: true})
		return nil
	}
	token, exp, u, err := s.finishSSOLogin(r, out)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.SSODevicePoll{Login: &api.LoginResponse{Token: token, ExpiresAt: exp, User: userView(u)}})
	return nil
}
