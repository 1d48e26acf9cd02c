package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image/png"
	"net/http"

	"github.com/pquerna/otp"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// The web console authenticates with a cookie holding an API token
// (HttpOnly, Secure, SameSite=Strict). Its name has the __Host- prefix, so
// a browser takes it only when it is Secure, has Path=/ and no Domain: a
// neighbouring subdomain or a plain-HTTP page cannot plant or shadow it.
// Because a browser sends cookies on its own, every state change made with
// the cookie must also carry the X-CSRF-Token header, an HMAC of the token
// that the page learns only from the login answer or /api/v1/ui/session.

const (
	sessionCookie = "__Host-pamd_session"
	csrfHeader    = "X-CSRF-Token"
)

// csrfKey is kept in the store so tokens stay valid across restarts.
func (s *Server) loadCSRFKey() error {
	return s.st.Update(func(tx *store.Tx) error {
		k, err := tx.Secret("csrf-key")
		if errors.Is(err, store.ErrNotFound) {
			k = []byte(randomSecret(32))
			err = tx.PutSecret("csrf-key", k)
		}
		s.csrfKey = k
		return err
	})
}

func (s *Server) csrfFor(tokenHash string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(tokenHash))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) checkCSRF(r *http.Request, tokenHash string) error {
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrfFor(tokenHash))) != 1 {
		return httpError(http.StatusForbidden, "missing or wrong CSRF token: reload the page")
	}
	return nil
}

type uiSession struct {
	User api.User `json:"user"`
	CSRF string   `json:"csrf"`
}

func (s *Server) handleUILogin(w http.ResponseWriter, r *http.Request) error {
	u, token, exp, err := s.loginRequest(r)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, uiSession{User: userView(u), CSRF: s.csrfFor(hashToken(token))})
	return nil
}

func (s *Server) handleUISession(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	writeJSON(w, http.StatusOK, uiSession{User: userView(c.user), CSRF: s.csrfFor(c.tokenHash)})
	return nil
}

func (s *Server) handleUILogout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	return s.handleLogout(w, r)
}

// qrDataURL renders an otpauth URI as a PNG data URL for the console.
func qrDataURL(uri string) string {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return ""
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return ""
	}
	var buf bytes.Buffer
	if png.Encode(&buf, img) != nil {
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}
