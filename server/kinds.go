package server

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/kind/mongokind"
	"github.com/pamd/pamd/server/kind/mssqlkind"
	"github.com/pamd/pamd/server/kind/sshkind"
	"github.com/pamd/pamd/server/kind/tcpkind"
	"github.com/pamd/pamd/store"
)

// kinds are the resource types this build serves, in the order they are
// listed (the console offers the first first). This is the one place the server learns them: everything a type
// does (its settings, descriptor, grant, rotation, tests, record
// summaries, console fields) is in its kind.
type kinds struct {
	byName map[string]kind.Kind
	order  []string
}

func newKinds(env kind.Env) *kinds {
	all := []kind.Kind{sshkind.New(env), mongokind.New(env), mssqlkind.New(env), tcpkind.New()}
	ks := &kinds{byName: map[string]kind.Kind{}}
	for _, k := range all {
		name := k.Schema().Name
		ks.byName[name] = k
		ks.order = append(ks.order, name)
	}
	return ks
}

// of returns the kind of a resource type; ok is false for a type this
// build does not serve.
func (ks *kinds) of(typ string) (kind.Kind, bool) {
	k, ok := ks.byName[typ]
	return k, ok
}

// must returns the kind of a stored resource, or an error for a type this
// build does not serve (a data dir from a newer pamd).
func (ks *kinds) must(res *store.Resource) (kind.Kind, error) {
	k, ok := ks.byName[res.Type]
	if !ok {
		return nil, httpError(http.StatusBadRequest, "resource %s is of type %q, which this pamd does not serve", res.Name, res.Type)
	}
	return k, nil
}

func (ks *kinds) unsupported(typ string) error {
	return httpError(http.StatusBadRequest, "resource type %q is not supported by this pamd (supported: %s)", typ, strings.Join(ks.order, ", "))
}

// summary renders a record by its session's resource kind (k nil: the
// resource is gone, so the first kind that knows the record's type).
func (ks *kinds) summary(k kind.Kind, r *tunnel.Record) string {
	if k != nil {
		return k.Summary(r)
	}
	for _, name := range ks.order {
		if s := ks.byName[name].Summary(r); s != "" {
			return s
		}
	}
	return ""
}

// handleKinds describes every kind for the console's forms.
func (s *Server) handleKinds(w http.ResponseWriter, r *http.Request) error {
	out := []api.Kind{}
	for _, name := range s.kinds.order {
		out = append(out, s.kinds.byName[name].Schema())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// kindEnv is what the kinds use of the server (kind.Env).
type kindEnv struct{ s *Server }

func (e kindEnv) Probe(ctx context.Context, gateway string, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	return e.s.probe(ctx, gateway, d)
}

func (e kindEnv) ResourceKey(use, resourceID string) (ssh.Signer, string, error) {
	return e.s.resourceKey(use, resourceID)
}

func (e kindEnv) ResourceCertificate(res *store.Resource) (string, string, error) {
	return e.s.mssqlCertificate(res)
}

func (e kindEnv) ResourceCA() string { return string(e.s.ca.resource.certPEM) }
