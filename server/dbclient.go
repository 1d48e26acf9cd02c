package server

import (
	"net"
	"os"
	"strings"

	"github.com/pamd/pamd/server/httpapi"
)

// dbClientCRLURL is where db-client certificates say their CRL is: under
// --public-url, else the host and port the server listens on (its host
// name when it listens on every address).
func dbClientCRLURL(cfg Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimSuffix(cfg.PublicURL, "/") + httpapi.DBClientCRLPath
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return ""
		}
	}
	return "https://" + net.JoinHostPort(host, port) + httpapi.DBClientCRLPath
}
