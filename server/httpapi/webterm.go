package httpapi

import (
	"net/http"

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
