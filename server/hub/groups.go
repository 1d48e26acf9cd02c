package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

// Pick names the gateway a new stream for res goes to: its gateway, or of
// its gateway group the connected gateway with the fewest open streams
// (ties to the first name), so a group's gateways share the connections
// and one that drops takes only its own.
func (h *Hub) Pick(res *store.Resource) (string, error) {
	if res.GatewayGroup == "" {
		return res.Gateway, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	best, fewest := "", 0
	for _, g := range h.inGroup(res.GatewayGroup) {
		if n := g.sess.NumStreams(); best == "" || n < fewest {
			best, fewest = g.name, n
		}
	}
	if best == "" {
		return "", fmt.Errorf("no gateway of group %s is connected", res.GatewayGroup)
	}
	return best, nil
}

// inGroup is the connected gateways of group, by name; h.mu is held.
func (h *Hub) inGroup(group string) []*gatewayConn {
	var out []*gatewayConn
	for _, g := range h.gw {
		if g.group == group && !g.sess.IsClosed() {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *gatewayConn) int { return strings.Compare(a.name, b.name) })
	return out
}

// OpenFor starts a stream to the gateway Pick chooses for res, and names it.
func (h *Hub) OpenFor(res *store.Resource) (*yamux.Stream, string, error) {
	name, err := h.Pick(res)
	if err != nil {
		return nil, "", err
	}
	st, err := h.Open(name)
	return st, name, err
}

// Reachable says whether a gateway that can serve res is connected.
func (h *Hub) Reachable(res *store.Resource) bool {
	if res.GatewayGroup == "" {
		return h.Online(res.Gateway)
	}
	_, err := h.Pick(res)
	return err == nil
}

// Serving is every connected gateway that may serve res: its gateway, or
// its group's; notices about its sessions go to each.
func (h *Hub) Serving(res *store.Resource) []string {
	if res.GatewayGroup == "" {
		return []string{res.Gateway}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, g := range h.inGroup(res.GatewayGroup) {
		out = append(out, g.name)
	}
	return out
}

// ProbeFor is Probe through the gateway Pick chooses for res.
func (h *Hub) ProbeFor(ctx context.Context, res *store.Resource, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	name, err := h.Pick(res)
	if err != nil {
		return nil, err
	}
	return h.Probe(ctx, name, d)
}

// serves says whether this connection's gateway may serve res: it is its
// gateway, or in its group.
func (g *gatewayConn) serves(res *store.Resource) bool {
	if res.GatewayGroup != "" {
		return g.group == res.GatewayGroup
	}
	return res.Gateway == g.name
}
