package tcpkind

import (
	"context"
	"net"
	"strconv"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// Kind is the tcp kind.
type Kind struct{}

// New returns the tcp kind.
func New() *Kind { return &Kind{} }

func (k *Kind) Schema() api.Kind {
	return api.Kind{
		Name: tunnel.ProtocolTCP, Label: "TCP service",
		ResourceFields: []api.Field{
			{Name: "host", Label: "Host", Type: api.FieldText, Required: true, Placeholder: "as the gateway sees it", Edit: true},
			{Name: "port", Label: "Port", Type: api.FieldNumber, Required: true, Edit: true},
		},
		AccountFields: []api.Field{},
		AccessCommand: "pamd connect",
	}
}

// Records: only bytes, which the server counts.
func (k *Kind) Records() bool { return false }

// Defaults leaves the port: a tcp resource must name one.
func (k *Kind) Defaults(*api.Resource) {}

func (k *Kind) Create(context.Context, *store.Resource, map[string]string, *kind.Outcome) error {
	return nil
}

func (k *Kind) Update(ctx context.Context, res *store.Resource, u *api.ResourceUpdate, _ bool, out *kind.Outcome) error {
	if len(u.Options) > 0 {
		return kind.BadRequest("%s resources have no options", res.Type)
	}
	_, err := kind.UpdateAddress(res, u, out)
	return err
}

func (k *Kind) CheckAccount(ctx context.Context, res *store.Resource, a *store.Account, update bool) error {
	if !update && (a.Auth != "" || a.PrivateKey != "") {
		return kind.BadRequest("--auth and keys are for ssh and mssql resources; %s is %s", res.Name, res.Type)
	}
	return nil
}

func (k *Kind) View(res *store.Resource, v *api.Resource) {
	v.Address = net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
}

func (k *Kind) Descriptor(d *tunnel.Descriptor, _ *store.Resource, _ *store.Account, _ *store.Session) error {
	d.TCP = &tunnel.TCPTarget{}
	return nil
}

func (k *Kind) Grant(*store.Resource, *store.Account, *api.SessionGrant) error { return nil }

func (k *Kind) Rotation(*store.Account) (kind.Rotation, string) {
	return kind.RotateNone, "tcp resources have no credentials to rotate"
}

func (k *Kind) Test(ctx context.Context, res *store.Resource, _ []*store.Account) ([]api.ResourceCheck, error) {
	return nil, kind.BadRequest("pamd has no test for %s resources", res.Type)
}

func (k *Kind) Summary(r *tunnel.Record) string { return kind.CommonSummary(r) }

func (k *Kind) FailureAction(tunnel.Reason) string { return "" }
