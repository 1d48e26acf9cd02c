package server

import (
	"context"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/server/hub"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/kind/mongokind"
	"github.com/pamd/pamd/server/kind/mssqlkind"
	"github.com/pamd/pamd/server/kind/postgreskind"
	"github.com/pamd/pamd/server/kind/sshkind"
	"github.com/pamd/pamd/server/kind/tcpkind"
	"github.com/pamd/pamd/store"
)

// newKinds is the resource types this build serves, in the order they are
// listed (the console offers the first first). This is the one place the
// server learns them: everything a type does (its settings, descriptor,
// grant, rotation, tests, record summaries, console fields) is in its kind.
func newKinds(env kind.Env) *kind.Set {
	return kind.NewSet(sshkind.New(env), mongokind.New(env), mssqlkind.New(env), postgreskind.New(env), tcpkind.New())
}

// kindEnv is what the kinds use of the server (kind.Env): the CA's
// per-resource keys and certificates, and probes through the gateways.
type kindEnv struct {
	ca  *ca.Authority
	hub *hub.Hub
}

func (e kindEnv) Probe(ctx context.Context, res *store.Resource, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	return e.hub.ProbeFor(ctx, res, d)
}

func (e kindEnv) ResourceKey(use, resourceID string) (ssh.Signer, string, error) {
	return e.ca.ResourceKey(use, resourceID)
}

func (e kindEnv) NextResourceKey(use, resourceID string) (ssh.Signer, error) {
	return e.ca.NextResourceKey(use, resourceID)
}

func (e kindEnv) ResourceCertificate(res *store.Resource) (string, string, error) {
	return e.ca.ResourceCertificate(res)
}

func (e kindEnv) ResourceCA() string { return string(e.ca.ResourceCertPEM()) }
