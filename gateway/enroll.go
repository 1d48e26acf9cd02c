package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pamd/pamd/protocol/pki"
)

// token mirrors the server's enrollment token: "pamdgw1." + base64url(JSON).
type token struct {
	URL         string `json:"u"`
	Fingerprint string `json:"f"`
	Secret      string `json:"s"`
	Name        string `json:"n"`
}

func parseToken(s string) (*token, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "pamdgw1."))
	var t token
	if !strings.HasPrefix(strings.TrimSpace(s), "pamdgw1.") || err != nil || json.Unmarshal(raw, &t) != nil || t.URL == "" || t.Secret == "" {
		return nil, errors.New("gateway: --token is not a pamd gateway enrollment token (they start with pamdgw1.)")
	}
	if _, err := url.Parse(t.URL); err != nil {
		return nil, fmt.Errorf("gateway: token's server URL: %w", err)
	}
	return &t, nil
}

// Enroll spends the token: it sends a CSR for a new key to the server,
// which it trusts by the token's CA fingerprint, and returns the identity.
// proxyURL is Config.Proxy: the HTTP proxy to go through, or "" for the
// environment's.
func Enroll(ctx context.Context, tokenText, proxyURL string) (*Identity, error) {
	t, err := parseToken(tokenText)
	if err != nil {
		return nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(t.Name, key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"token": tokenText, "csr": string(csr)})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: pki.PinnedClientConfig(t.Fingerprint, pki.ALPNHTTP),
		DialContext:     dialTCP(proxyURL),
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.URL, "/")+"/api/v1/gateways/enroll", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("gateway: enroll: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway: enroll with %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	var out struct {
		Name        string `json:"name"`
		Certificate string `json:"certificate"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("gateway: enroll: unreadable answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gateway: enrollment refused: %s", out.Error)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Identity{Name: out.Name, ServerURL: t.URL, Fingerprint: t.Fingerprint, CertPEM: []byte(out.Certificate), KeyPEM: keyPEM}, nil
}
