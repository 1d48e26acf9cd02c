package kind

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/store"
)

// Set is the resource types a server serves, in the order they are listed
// (the console offers the first first). The server makes it in one place
// (server/kinds.go); everything else asks it.
type Set struct {
	byName map[string]Kind
	order  []string
}

// NewSet is the set of the given kinds, each known by its schema's name.
func NewSet(all ...Kind) *Set {
	ks := &Set{byName: map[string]Kind{}}
	for _, k := range all {
		name := k.Schema().Name
		ks.byName[name] = k
		ks.order = append(ks.order, name)
	}
	return ks
}

// Of returns the kind of a resource type; ok is false for a type this
// build does not serve.
func (ks *Set) Of(typ string) (Kind, bool) {
	k, ok := ks.byName[typ]
	return k, ok
}

// Must returns the kind of a stored resource, or an error for a type this
// build does not serve (a data dir from a newer pamd).
func (ks *Set) Must(res *store.Resource) (Kind, error) {
	k, ok := ks.byName[res.Type]
	if !ok {
		return nil, api.Errorf(http.StatusBadRequest, "resource %s is of type %q, which this pamd does not serve", res.Name, res.Type)
	}
	return k, nil
}

// Unsupported is the error for a new resource of an unknown type.
func (ks *Set) Unsupported(typ string) error {
	return api.Errorf(http.StatusBadRequest, "resource type %q is not supported by this pamd (supported: %s)", typ, strings.Join(ks.order, ", "))
}

// Schemas describes every kind, in order, for the console's forms.
func (ks *Set) Schemas() []api.Kind {
	out := make([]api.Kind, 0, len(ks.order))
	for _, name := range ks.order {
		out = append(out, ks.byName[name].Schema())
	}
	return out
}

// Summary renders a record by its session's resource kind (k nil: the
// resource is gone, so the first kind that knows the record's type).
func (ks *Set) Summary(k Kind, r *tunnel.Record) string {
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

// Descriptor fills in how the gateway reaches res and logs in as acct;
// sess bounds a certificate made for the connection.
func (ks *Set) Descriptor(d *tunnel.Descriptor, res *store.Resource, acct *store.Account, sess *store.Session) error {
	k, err := ks.Must(res)
	if err != nil {
		return err
	}
	d.Protocol, d.Resource, d.Account = res.Type, res.Name, acct.Name
	d.Target = net.JoinHostPort(res.Host, fmt.Sprint(res.Port))
	return k.Descriptor(d, res, acct, sess)
}
