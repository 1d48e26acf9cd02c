package mongoproxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/description"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/mnet"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/session"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/pamd/pamd/protocol/mongowire"
	"github.com/pamd/pamd/protocol/tunnel"
	pamdproxy "github.com/pamd/pamd/proxy"
)

// Pool keeps one topology per access session and credential, closed when
// the session ends. A rotated credential gets a topology of its own, so a
// live session's new connections log in with it while those already open
// carry on.
type Pool struct {
	mu   sync.Mutex
	tops map[string]*entry
	// closing counts the disconnects Release started; Close waits for them.
	closing sync.WaitGroup
}

type entry struct {
	session string
	top     *topology.Topology
	expires time.Time
	ready   chan struct{}
	err     error
}

// NewPool returns an empty pool; close what it holds with Release, Sweep
// or, when the gateway stops, Close.
func NewPool() *Pool { return &Pool{tops: map[string]*entry{}} }

// topology returns the session's topology, connecting (and checking the
// credential) the first time.
func (p *Pool) topology(ctx context.Context, d *tunnel.Descriptor) (*topology.Topology, error) {
	key := poolKey(d)
	p.mu.Lock()
	e, ok := p.tops[key]
	if !ok {
		e = &entry{session: d.SessionID, expires: d.ExpiresAt, ready: make(chan struct{})}
		p.tops[key] = e
		p.mu.Unlock()
		e.top, e.err = connect(ctx, d, true)
		close(e.ready)
		if e.err != nil {
			p.mu.Lock()
			delete(p.tops, key) // the next connection tries again
			p.mu.Unlock()
		}
		return e.top, e.err
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
		return e.top, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// poolKey names a session's topology for one credential; the hash keeps
// the password itself out of the map.
func poolKey(d *tunnel.Descriptor) string {
	sum := sha256.Sum256([]byte(d.Mongo.Username + "\x00" + d.Mongo.Password))
	return d.SessionID + "/" + hex.EncodeToString(sum[:8])
}

// Release closes a session's topologies.
func (p *Pool) Release(sessionID string) {
	p.mu.Lock()
	var gone []*entry
	for k, e := range p.tops {
		if e.session == sessionID {
			gone = append(gone, e)
			delete(p.tops, k)
		}
	}
	p.mu.Unlock()
	for _, e := range gone {
		// Not waited for here: a topology still connecting (e.ready) is
		// closed once it is up, and the gateway's notice must not wait.
		p.closing.Add(1)
		go func() {
			defer p.closing.Done()
			<-e.ready
			if e.top != nil {
				e.top.Disconnect(context.Background())
			}
		}()
	}
}

// Close closes every topology and waits until they are closed.
func (p *Pool) Close() {
	p.mu.Lock()
	sessions := map[string]bool{}
	for _, e := range p.tops {
		sessions[e.session] = true
	}
	p.mu.Unlock()
	for id := range sessions {
		p.Release(id)
	}
	p.closing.Wait()
}

// Sweep closes the topologies of sessions that have expired.
func (p *Pool) Sweep(now time.Time) {
	p.mu.Lock()
	var ids []string
	for _, e := range p.tops {
		if now.After(e.expires) {
			ids = append(ids, e.session)
		}
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.Release(id)
	}
}

// clientOptions turns a descriptor into driver options.
func clientOptions(d *tunnel.Descriptor, withAuth bool) (*options.ClientOptions, error) {
	// Shorter than clients' own selection timeouts, so pamd's error reply
	// reaches them before they give up.
	opts := options.Client().ApplyURI(d.Mongo.URI).SetAppName("pamd").
		SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second)
	if d.Mongo.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if d.Mongo.TLSCA != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(d.Mongo.TLSCA)) {
				return nil, errors.New("the resource's TLS CA is not a PEM certificate")
			}
			tc.RootCAs = pool
		}
		tc.InsecureSkipVerify = !d.Mongo.TLSRejectUnauthorized
		opts.SetTLSConfig(tc)
	} else {
		opts.SetTLSConfig(nil)
	}
	if withAuth {
		src := d.Mongo.AuthDatabase
		if src == "" {
			src = "admin"
		}
		opts.SetAuth(options.Credential{Username: d.Mongo.Username, Password: d.Mongo.Password, AuthSource: src})
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("connection string: %v", err)
	}
	return opts, nil
}

// connect builds and starts a topology and proves it works with one
// connection (which authenticates when withAuth).
func connect(ctx context.Context, d *tunnel.Descriptor, withAuth bool) (*topology.Topology, error) {
	opts, err := clientOptions(d, withAuth)
	if err != nil {
		return nil, err
	}
	if err := reachable(ctx, opts.Hosts); err != nil {
		return nil, pamdproxy.TargetFailed(tunnel.ReasonUnreachable, fmt.Errorf("cannot reach the MongoDB server of resource %s (%s): %v", d.Resource, d.Mongo.URI, err))
	}
	cfg, err := topology.NewConfig(opts, new(session.ClusterClock))
	if err != nil {
		return nil, fmt.Errorf("topology: %v", err)
	}
	top, err := topology.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("topology: %v", err)
	}
	if err := top.Connect(); err != nil {
		return nil, fmt.Errorf("topology: %v", err)
	}
	conn, err := serverConn(ctx, top)
	if err != nil {
		top.Disconnect(context.Background())
		return nil, explain(d, err)
	}
	conn.Close()
	return top, nil
}

// reachable fails fast when no listed host accepts a TCP connection, rather
// than after the driver's server selection timeout. (mongodb+srv lists no
// hosts here; the driver resolves those.)
func reachable(ctx context.Context, hosts []string) error {
	var last error
	for _, h := range hosts {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := d.DialContext(dctx, "tcp", h)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		last = err
	}
	if last != nil {
		var oe *net.OpError
		if errors.As(last, &oe) && oe.Err != nil {
			last = oe.Err
		}
	}
	return last
}

// writable selects the servers that take writes, where pamd sends everything.
type writable struct{}

func (writable) SelectServer(_ description.Topology, servers []description.Server) ([]description.Server, error) {
	var out []description.Server
	for _, s := range servers {
		switch s.Kind {
		case description.ServerKindStandalone, description.ServerKindRSPrimary, description.ServerKindMongos, description.ServerKindLoadBalancer:
			out = append(out, s)
		}
	}
	return out, nil
}

func serverConn(ctx context.Context, top *topology.Topology) (*mnet.Connection, error) {
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	srv, err := top.SelectServer(sctx, writable{})
	if err != nil {
		return nil, err
	}
	return srv.Connection(sctx)
}

// explain words a driver error for the person at the client.
func explain(d *tunnel.Descriptor, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "auth error") || strings.Contains(msg, "AuthenticationFailed") || strings.Contains(msg, "Authentication failed"):
		return pamdproxy.TargetFailed(tunnel.ReasonLoginRefused, fmt.Errorf("the MongoDB server of resource %s refused the stored credential of account %s (user %s, auth database %s)",
			d.Resource, d.Account, d.Mongo.Username, orDefault(d.Mongo.AuthDatabase, "admin")))
	case strings.Contains(msg, "certificate") || strings.Contains(msg, "x509") || strings.Contains(msg, "tls:"):
		return pamdproxy.TargetFailed(tunnel.ReasonProtocol, fmt.Errorf("TLS with the MongoDB server of resource %s failed: %s (check --tls-ca-file, or turn verification off with --tls-reject-unauthorized=false)", d.Resource, lastPart(msg)))
	case strings.Contains(msg, "server selection") || strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host"):
		return pamdproxy.TargetFailed(tunnel.ReasonUnreachable, fmt.Errorf("cannot reach the MongoDB server of resource %s (%s): %s", d.Resource, d.Mongo.URI, lastPart(msg)))
	}
	return fmt.Errorf("MongoDB server of resource %s: %s", d.Resource, lastPart(msg))
}

func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Probe checks that the server is reachable (and, with credentials, that
// they work) and returns its version.
func Probe(ctx context.Context, d *tunnel.Descriptor) (string, error) {
	reply, err := command(ctx, d, bsoncore.NewDocumentBuilder().AppendInt32("buildInfo", 1).AppendString("$db", "admin").Build())
	if err != nil {
		return "", err
	}
	v, _ := reply.Lookup("version").StringValueOK()
	return v, nil
}

// command runs one command on a fresh connection, logged in with the
// descriptor's credential when it has one, and returns the reply.
func command(ctx context.Context, d *tunnel.Descriptor, body bsoncore.Document) (bsoncore.Document, error) {
	top, err := connect(ctx, d, d.Mongo.Username != "")
	if err != nil {
		return nil, err
	}
	defer top.Disconnect(context.Background())
	conn, err := serverConn(ctx, top)
	if err != nil {
		return nil, explain(d, err)
	}
	defer conn.Close()
	req := &mongowire.Message{Header: mongowire.Header{RequestID: 1, OpCode: mongowire.OpMsg}, Body: (&mongowire.Msg{Body: body}).AppendBody(nil)}
	if err := conn.Write(ctx, req.Append(nil)); err != nil {
		return nil, explain(d, err)
	}
	raw, err := conn.Read(ctx)
	if err != nil {
		return nil, explain(d, err)
	}
	m, err := mongowire.Parse(raw)
	if err != nil {
		return nil, err
	}
	msg, err := mongowire.ParseMsg(m.Body)
	if err != nil {
		return nil, err
	}
	return bsoncore.Document(msg.Body), nil
}
