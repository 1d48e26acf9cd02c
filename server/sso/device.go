package sso

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pamd/pamd/server/api"
)

// The device authorization grant (RFC 8628) for pamd login --sso --device
// on a machine without a browser: the server asks the provider for a user
// code, the person enters it on any device, and the CLI polls the server,
// which polls the provider. The device code stays on the server; the CLI
// holds only a handle to it.

// devicePollWait is the longest one poll of the CLI waits for the provider.
const devicePollWait = 20 * time.Second

type pendingDevice struct {
	mu       sync.Mutex // one poll at a time
	auth     *oauth2.DeviceAuthResponse
	issuer   string
	clientID string
	done     bool
}

// DeviceStart is what the person is told to do.
type DeviceStart struct {
	Handle                  string
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	Expires                 time.Time
}

// DeviceBegin asks the provider for a device code and user code.
func (s *Service) DeviceBegin(ctx context.Context) (*DeviceStart, error) {
	c, err := s.Settings()
	if err != nil {
		return nil, err
	}
	prov, err := s.discover(ctx, c.Issuer, true)
	if err != nil {
		return nil, apiError(err)
	}
	conf := oauthConfig(c, prov, "")
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, api.Errorf(http.StatusNotImplemented, "the SSO provider %s offers no device authorization grant (its discovery has no device_authorization_endpoint): use pamd login --sso on a machine with a browser", c.Issuer)
	}
	da, err := conf.DeviceAuth(oidc.ClientContext(ctx, s.http))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, apiError(refused("the SSO provider refused the device login: %s", retrieveText(re)))
		}
		return nil, apiError(ProviderError{Issuer: c.Issuer, Err: err})
	}
	if da.Expiry.IsZero() || time.Until(da.Expiry) > pendingTTL {
		da.Expiry = time.Now().Add(pendingTTL)
	}
	handle := randomString()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if len(s.pending)+len(s.devices) >= maxPending {
		return nil, api.Errorf(http.StatusServiceUnavailable, "too many SSO logins in progress: try again in a few minutes")
	}
	s.devices[handle] = &pendingDevice{auth: da, issuer: c.Issuer, clientID: c.ClientID}
	return &DeviceStart{Handle: handle, UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, Expires: da.Expiry}, nil
}

// DevicePoll waits up to devicePollWait for the person to finish at the
// provider: the identity once they did, nil while they have not.
func (s *Service) DevicePoll(ctx context.Context, handle string) (*Identity, error) {
	s.mu.Lock()
	d := s.devices[handle]
	s.mu.Unlock()
	if d == nil {
		return nil, refused("this SSO device login is unknown or expired: start it again")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || time.Now().After(d.auth.Expiry) {
		s.dropDevice(handle)
		return nil, refused("this SSO device login is unknown or expired: start it again")
	}
	c, err := s.Settings()
	if err != nil {
		return nil, err
	}
	if c.Issuer != d.issuer || c.ClientID != d.clientID {
		s.dropDevice(handle)
		return nil, refused("the SSO settings changed during the login: start it again")
	}
	prov, err := s.discover(ctx, c.Issuer, false)
	if err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, min(devicePollWait, time.Until(d.auth.Expiry)))
	defer cancel()
	tok, err := oauthConfig(c, prov, "").DeviceAccessToken(oidc.ClientContext(wait, s.http), d.auth)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
	case errors.As(err, &re):
		s.dropDevice(handle)
		return nil, refused("the SSO provider refused the device login: %s", retrieveText(re))
	case wait.Err() != nil && ctx.Err() == nil:
		return nil, nil // not yet
	default:
		return nil, ProviderError{Issuer: c.Issuer, Err: err}
	}
	d.done = true
	s.dropDevice(handle)
	// No nonce in this grant: the ID token comes straight from the token
	// endpoint to the server, for the device code only it holds.
	return s.identity(ctx, c, prov, tok, "")
}

func (s *Service) dropDevice(handle string) {
	s.mu.Lock()
	delete(s.devices, handle)
	s.mu.Unlock()
}

// CompleteDevice is Complete for the device grant: nil, nil while the
// person has not finished at the provider.
func (s *Service) CompleteDevice(ctx context.Context, handle, source string) (*Outcome, error) {
	id, err := s.DevicePoll(ctx, handle)
	if err != nil {
		s.trail.Event("sso:unknown", "sso.login", "", "failure", source, err.Error())
		return nil, apiError(err)
	}
	if id == nil {
		return nil, nil
	}
	out, err := s.Login(id, source)
	return out, apiError(err)
}

func retrieveText(re *oauth2.RetrieveError) string {
	if re.ErrorCode == "" {
		return re.Response.Status
	}
	msg := printableText(re.ErrorCode, 64)
	if re.ErrorDescription != "" {
		msg += ": " + printableText(re.ErrorDescription, 300)
	}
	return msg
}
