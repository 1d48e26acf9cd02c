package httpapi

import (
	"net/http"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

// handleTerminal upgrades to the web terminal of one of the caller's own
// sessions (webterm). Only the session's user attaches: a shell is typed
// into as that user and recorded as theirs, so no role, not even admin,
// may attach to another's; they are told there is no such session.
func (s *API) handleTerminal(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	if s.cfg.Terminal == nil {
		return api.Errorf(http.StatusNotFound, "this server has no web terminal")
	}
	var sess *store.Session
	err := s.st.View(func(tx *store.Tx) (err error) { sess, err = tx.Session(r.PathValue("id")); return })
	if err != nil || sess.UserID != c.User.ID {
		return api.Errorf(http.StatusNotFound, "no session %q of yours", r.PathValue("id"))
	}
	return s.cfg.Terminal.Serve(w, r, sess)
}

// handleWatch upgrades to a read-only live view of a session's terminal
// (webterm's Watch), for admins and auditors. Watching is audited, and the
// session's gateway tells the watched user's terminals who watches; when
// it cannot (an older gateway, or it is offline), the audit event says so.
func (s *API) handleWatch(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	if s.cfg.Terminal == nil {
		return api.Errorf(http.StatusNotFound, "this server has no web terminal")
	}
	var (
		sess *store.Session
		res  *store.Resource
	)
	err := s.st.View(func(tx *store.Tx) (err error) {
		if sess, err = tx.Session(r.PathValue("id")); err != nil {
			return err
		}
		res, err = tx.Resource(sess.ResourceID)
		return err
	})
	if err != nil {
		return api.Errorf(http.StatusNotFound, "no session %q", r.PathValue("id"))
	}
	if !sess.EndedAt.IsZero() || !time.Now().Before(sess.ExpiresAt) {
		return api.Errorf(http.StatusConflict, "session %s is not live: replay its recording instead", sess.ID)
	}
	// Before the user is told or anything is audited: another site's page
	// must not make a watched user see a watcher who is not there.
	if err := s.cfg.Terminal.CheckOrigin(r); err != nil {
		return err
	}
	detail := sess.ResourceName + "/" + sess.AccountName + " of " + sess.UserName
	if err := s.hub.Watched(r.Context(), res, sess.ID, c.User.Name, 2*time.Second); err != nil {
		detail += "; the user could not be told: " + err.Error()
	} else {
		detail += "; the user was told"
	}
	s.trail.Event(c.User.Name, "session.watch", sess.ID, "success", c.Source, detail)
	return s.cfg.Terminal.Watch(w, r, sess)
}
