package httpapi

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"

	"github.com/pquerna/otp"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
)

type uiSession struct {
	User api.User `json:"user"`
	CSRF string   `json:"csrf"`
}

func (s *API) handleUILogin(w http.ResponseWriter, r *http.Request) error {
	u, token, exp, err := s.loginRequest(r)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, uiSession{User: userView(u), CSRF: s.auth.CSRFFor(auth.HashToken(token))})
	return nil
}

func (s *API) handleUISession(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	writeJSON(w, http.StatusOK, uiSession{User: userView(c.User), CSRF: s.auth.CSRFFor(c.TokenHash)})
	return nil
}

func (s *API) handleUILogout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1,
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
