package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/server/api"
)

// Client calls one server's API.
type Client struct {
	Base            string // https://host:port
	Fingerprint     string // pinned CA; empty means the system roots
	NextFingerprint string // a CA rotation's next CA, pinned too
	Token           string
	// OnPins, when set, is called after every answer with the fingerprint
	// of the last certificate of the chain the connection verified and
	// what the server says clients pin (api.PinHeader, api.NextPinHeader),
	// for the saved login to follow a CA rotation (Login.LearnPins).
	OnPins func(served, current, next string)
	http   *http.Client
}

// New returns a client for server; fingerprint may be empty. More
// fingerprints (a CA rotation's next CA) are pinned too.
func New(server, fingerprint, token string, more ...string) (*Client, error) {
	base, err := NormalizeServer(server)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{pki.ALPNHTTP}}
	if fingerprint != "" {
		tc = pki.PinnedClientConfig(fingerprint, pki.ALPNHTTP, more...)
	}
	return &Client{Base: base, Fingerprint: fingerprint, Token: token, http: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 10 * time.Second},
	}}, nil
}

// NormalizeServer turns "host", "host:port" or a URL into https://host:port.
func NormalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("no server: pass --server https://HOST:PORT")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server %q: want https://HOST:PORT", s)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("server %q: pamd speaks only https", s)
	}
	return "https://" + u.Host, nil
}

// HostPort is the server's address for the tunnel dial.
func (c *Client) HostPort() string {
	u, _ := url.Parse(c.Base)
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

// Do sends in (when not nil) as JSON and decodes the answer into out (when
// not nil; a *[]byte takes the body as it is). A non-2xx answer comes back
// as *api.Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, pki.ErrPinMismatch) {
			return fmt.Errorf("cannot reach pamd server %s: %w: its CA may have been rotated while this login was not used, or someone is in between; log in again with --ca-fingerprint (confirm it with the administrator: pamd ca rotate status)", c.Base, err)
		}
		return fmt.Errorf("cannot reach pamd server %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	if c.OnPins != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		// Followed only when the chain that verified is pinned (LearnPins).
		chain := resp.TLS.PeerCertificates
		c.OnPins(pki.Fingerprint(chain[len(chain)-1].Raw), resp.Header.Get(api.PinHeader), resp.Header.Get(api.NextPinHeader))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading answer from %s: %w", c.Base, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &api.Error{}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = fmt.Sprintf("server answered %s", resp.Status)
		}
		ae.Status = resp.StatusCode
		return ae
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("unreadable answer from %s: %w", c.Base, err)
		}
	}
	return nil
}

// ServerChain fetches the certificates the server presents, without
// trusting them, so a person can be shown the fingerprint to confirm.
func ServerChain(ctx context.Context, server string) ([]*x509.Certificate, error) {
	base, err := NormalizeServer(server)
	if err != nil {
		return nil, err
	}
	c, _ := New(base, "", "")
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{pki.ALPNHTTP}}} // only to read the chain; nothing is sent
	conn, err := d.DialContext(ctx, "tcp", c.HostPort())
	if err != nil {
		return nil, fmt.Errorf("cannot reach pamd server %s: %w", base, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates, nil
}
