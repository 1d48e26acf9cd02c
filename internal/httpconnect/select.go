package httpconnect

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// Parse reads a proxy URL: http://[USER:PASSWORD@]HOST[:PORT], port 80 by
// default. A bare HOST:PORT is taken as http://, as curl does. Errors never
// quote the text, which may hold a password.
func Parse(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.New("not a proxy URL: want http://[USER:PASSWORD@]HOST:PORT")
	}
	return check(u)
}

// check refuses what Dial cannot use.
func check(u *url.URL) (*url.URL, error) {
	if u.Scheme != "http" {
		return nil, fmt.Errorf("proxy %s: only http:// proxies are supported (the tunnel through it is TLS already)", Redacted(u))
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("proxy %s: want http://[USER:PASSWORD@]HOST:PORT, nothing after the port", Redacted(u))
	}
	return u, nil
}

// Redacted names the proxy without its user info: scheme://host:port.
func Redacted(u *url.URL) string {
	return u.Scheme + "://" + hostPort(u)
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// ForServer returns the proxy to reach the server at addr (host:port)
// through, or nil for none: the given one (--proxy) whatever the
// environment says, else https_proxy or HTTPS_PROXY (the lower case first,
// as curl reads them) unless no_proxy or NO_PROXY names the server. As for any HTTPS client, a server on
// localhost or a loopback address is never reached through the
// environment's proxy.
func ForServer(given string, addr string) (*url.URL, error) {
	if given != "" {
		return Parse(given)
	}
	env, err := environment()
	if err != nil {
		return nil, err
	}
	u, err := env.ProxyFunc()(&url.URL{Scheme: "https", Host: addr})
	if err != nil {
		return nil, errors.New("HTTPS_PROXY: not a proxy URL")
	}
	if u == nil {
		return nil, nil
	}
	return check(u)
}

// CheckEnvironment reports a proxy URL in https_proxy or HTTPS_PROXY that
// ForServer would refuse, so a gateway can say so at its start.
func CheckEnvironment() error {
	_, err := environment()
	return err
}

// environment reads the proxy settings, refusing a malformed HTTPS proxy
// here: httpproxy's own errors quote the value, password and all.
func environment() (*httpproxy.Config, error) {
	env := httpproxy.FromEnvironment()
	if env.HTTPSProxy != "" {
		if _, err := Parse(env.HTTPSProxy); err != nil {
			return nil, fmt.Errorf("HTTPS_PROXY: %w", err)
		}
	}
	return env, nil
}
