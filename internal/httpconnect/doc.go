// Package httpconnect reaches a TCP address through an HTTP proxy's
// CONNECT method, for gateways whose network lets them out only that way:
// Dial asks an http:// proxy for a tunnel (with basic authentication from
// the URL's user info) and returns the connection, for TLS to go over it
// as it would over a direct one. ForServer picks the proxy: the one given
// (pamd gateway --proxy), else HTTPS_PROXY and NO_PROXY from the
// environment.
//
// The proxy's password is never in an error or a log line: proxies are
// named as http://host:port (Redacted), and a malformed URL is refused
// without quoting it. The proxy's answer is read through a bounded reader
// (MaxAnswer), so a proxy that sends garbage or never ends its header
// costs a fixed amount.
//
// Files: dial.go (Dial and the reading of the answer), select.go (Parse,
// Redacted, ForServer, CheckEnvironment).
package httpconnect
