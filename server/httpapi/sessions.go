package httpapi

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

const defaultSessionDuration = time.Hour

func (s *API) handleCreateSession(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateSessionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	target := audit.Name(req.Resource) + "/" + audit.Name(req.Account)
	deny := func(status int, format string, args ...any) error {
		e := api.Errorf(status, format, args...)
		s.trail.Event(c.User.Name, "access.deny", target, "failure", c.Source, e.Message)
		return e
	}
	want := defaultSessionDuration
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return api.Errorf(http.StatusBadRequest, "duration %q: want a duration such as 30m or 2h", req.Duration)
		}
		want = d
	}
	var (
		res  *store.Resource
		acct *store.Account
	)
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.ResourceByName(req.Resource); err != nil {
			return err
		}
		acct, err = tx.AccountByName(res.ID, req.Account)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// A target that does not exist gets the answer of one not granted, so
	// the API does not tell a user which names exist.
	g, ok := sessions.GrantFor(c.Roles, req.Resource, req.Account)
	if err != nil || !ok {
		return deny(http.StatusForbidden, "access to %s denied: it does not exist or none of your roles (%s) allows it", target, strings.Join(c.User.Roles, ", "))
	}
	if g.RequireReason && strings.TrimSpace(req.Reason) == "" {
		return deny(http.StatusBadRequest, "access to %s needs a reason: add --reason", target)
	}
	if len(req.Reason) > 1024 {
		return api.Errorf(http.StatusBadRequest, "reason: at most 1024 characters")
	}
	if acct.RequireMFA {
		if c.User.MFASecret == "" {
			return deny(http.StatusForbidden, "account %s requires MFA and you have none enrolled: run pamd mfa enroll", target)
		}
		if req.TOTP == "" {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeMFARequired, Message: "account " + target + " requires a fresh MFA code: add --totp"}
		}
		if err := s.auth.MFAWait(c); err != nil {
			return err
		}
	}
	if !s.hub.Online(res.Gateway) {
		return deny(http.StatusServiceUnavailable, "gateway %s of resource %s is offline; the resource cannot be reached until it reconnects", res.Gateway, res.Name)
	}
	dur := min(want, g.MaxDuration)
	credential := "pamds_" + auth.RandomSecret(32)
	now := time.Now().UTC()
	sess := &store.Session{
		ID: store.NewID(), UserID: c.User.ID, UserName: c.User.Name, ResourceID: res.ID, ResourceName: res.Name,
		AccountID: acct.ID, AccountName: acct.Name, Reason: strings.TrimSpace(req.Reason), ClientAddr: c.Source,
		CredentialHash: auth.HashToken(credential), CreatedAt: now, ExpiresAt: now.Add(dur),
	}
	var mfaFailed bool
	err = s.st.Update(func(tx *store.Tx) error {
		if acct.RequireMFA {
			u, err := tx.User(c.User.ID)
			if err != nil {
				return err
			}
			if !auth.CheckTOTP(u, req.TOTP, now) {
				mfaFailed = true
				return audit.Append(tx, c.User.Name, "access.deny", target, "failure", c.Source, "wrong or reused MFA code")
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		detail := "session " + sess.ID + " until " + sess.ExpiresAt.Format(time.RFC3339)
		if dur < want {
			detail += " (capped from " + want.String() + ")"
		}
		if sess.Reason != "" {
			detail += "; reason: " + sess.Reason
		}
		if err := audit.Append(tx, c.User.Name, "access.grant", target, "success", c.Source, detail); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "session.start", sess.ID, "success", c.Source, target)
	})
	if err != nil {
		return err
	}
	if mfaFailed {
		s.auth.MFAFailed(c)
		return api.Errorf(http.StatusUnauthorized, "%s", auth.ErrBadCode.Error())
	}
	if acct.RequireMFA {
		s.auth.MFASucceeded(c)
	}
	s.live.Add(sess)
	s.cfg.Metrics.SessionOpened(res.Type)
	grant := api.SessionGrant{Session: sessionView(sess, res.Type, nil), Credential: credential, Username: acct.Username}
	if c.ViaCookie {
		// The console never needs it (its terminal attaches by the cookie),
		// and a script injected into a page could carry it anywhere.
		grant.Credential = ""
	}
	k, err := s.kinds.Must(res)
	if err != nil {
		return err
	}
	if err := k.Grant(res, acct, &grant); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, grant)
	return nil
}

func sessionView(s *store.Session, resType string, conns []*store.Connection) api.Session {
	v := api.Session{ID: s.ID, User: s.UserName, Resource: s.ResourceName, ResourceType: resType, Account: s.AccountName,
		Reason: s.Reason, ClientAddr: s.ClientAddr, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
		EndedAt: s.EndedAt, EndReason: s.EndReason, Active: s.Active(time.Now())}
	for _, c := range conns {
		v.Connections = append(v.Connections, api.Connection{ID: c.ID, ClientAddr: c.ClientAddr, StartedAt: c.StartedAt,
			EndedAt: c.EndedAt, BytesUp: c.BytesUp, BytesDown: c.BytesDown, Error: c.Error})
	}
	sort.Slice(v.Connections, func(i, j int) bool { return v.Connections[i].StartedAt.Before(v.Connections[j].StartedAt) })
	return v
}

func (s *API) handleListSessions(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	activeOnly := r.URL.Query().Get("active") == "true"
	out := []api.Session{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Sessions()
		for _, sess := range all {
			if !c.CanRead() && sess.UserID != c.User.ID {
				continue
			}
			if activeOnly && !sess.Active(time.Now()) {
				continue
			}
			out = append(out, sessionView(sess, "", nil))
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleGetSession(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	var out api.Session
	err := s.st.View(func(tx *store.Tx) error {
		sess, err := tx.Session(r.PathValue("id"))
		if err != nil || (!c.CanRead() && sess.UserID != c.User.ID) {
			return api.Errorf(http.StatusNotFound, "no session %q", r.PathValue("id"))
		}
		conns, err := tx.Connections(sess.ID)
		if err != nil {
			return err
		}
		var resType string
		if res, err := tx.Resource(sess.ResourceID); err == nil {
			resType = res.Type
		}
		out = sessionView(sess, resType, conns)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleTerminateSession(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	id := r.PathValue("id")
	var sess *store.Session
	err := s.st.View(func(tx *store.Tx) (err error) { sess, err = tx.Session(id); return })
	if err != nil || (!c.IsAdmin() && sess.UserID != c.User.ID) {
		if err == nil && c.CanRead() {
			return api.Errorf(http.StatusForbidden, "permission denied: only admins terminate other users' sessions")
		}
		return api.Errorf(http.StatusNotFound, "no session %q", id)
	}
	if !sess.Active(time.Now()) {
		return api.Errorf(http.StatusConflict, "session %s is not active (%s)", id, orStr(sess.EndReason, "expired"))
	}
	s.trail.Event(c.User.Name, "session.terminate", id, "success", c.Source, sess.ResourceName+"/"+sess.AccountName+" of "+sess.UserName)
	if err := s.live.End(r.Context(), id, "terminated by "+c.User.Name, c.User.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "terminated"})
	return nil
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *API) handleListAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return api.Errorf(http.StatusBadRequest, "since %q: want a duration such as 1h or 30m", v)
		}
		since = time.Now().Add(-d)
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return api.Errorf(http.StatusBadRequest, "limit %q: want a positive number", v)
		}
		limit = n
	}
	user, action := q.Get("user"), q.Get("action")
	out := []api.AuditEvent{}
	err := s.st.View(func(tx *store.Tx) error {
		return tx.AuditEvents(func(e *store.AuditEvent) bool {
			switch {
			case e.Time.Before(since):
			case user != "" && e.Actor != user:
			case action != "" && e.Action != action && !strings.HasPrefix(e.Action, action+"."):
			default:
				out = append(out, api.AuditEvent(*e))
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	if len(out) > limit {
		out = out[len(out)-limit:] // the newest
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleVerifyAudit(w http.ResponseWriter, r *http.Request) error {
	var v api.AuditVerify
	var seq uint64
	var hash string
	if v.Expected = r.URL.Query().Get("expect"); v.Expected != "" {
		var err error
		if seq, hash, err = parseExpect(v.Expected); err != nil {
			return err
		}
	}
	err := s.st.View(func(tx *store.Tx) error {
		n, brk, err := tx.VerifyAudit()
		v.Events, v.OK = n, brk == nil
		if brk != nil {
			v.Seq, v.Reason = brk.Seq, brk.Reason
		}
		if err != nil || hash == "" || !v.OK {
			return err
		}
		if v.Holds, err = tx.AuditHolds(seq, hash); err == nil && !v.Holds {
			v.OK, v.Reason = false, "the chain does not hold the expected event "+v.Expected+": this store was rolled back to an older copy, or the head is from another pamd"
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
