package gateway

import (
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/mongoproxy"
	"github.com/pamd/pamd/proxy/mssqlproxy"
	"github.com/pamd/pamd/proxy/postgresproxy"
	"github.com/pamd/pamd/proxy/sshproxy"
	"github.com/pamd/pamd/proxy/tcpproxy"
)

// handlers is the one place the gateway learns its protocols: each
// descriptor's Protocol names its handler. A handler may also probe
// (proxy.Prober), rotate (proxy.Rotator) and keep per-session state
// (proxy.SessionEnder, proxy.Sweeper).
// certify signs PKINIT certificates for SQL Server accounts (dbcert.go).
func handlers(certify mssqlproxy.Certifier) map[string]proxy.Handler {
	return map[string]proxy.Handler{
		tunnel.ProtocolTCP:      tcpproxy.Handler{},
		tunnel.ProtocolSSH:      sshproxy.Handler{},
		tunnel.ProtocolMongo:    mongoproxy.New(),
		tunnel.ProtocolMSSQL:    mssqlproxy.Handler{Certify: certify},
		tunnel.ProtocolPostgres: postgresproxy.New(),
	}
}
