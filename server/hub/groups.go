package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

// Pick names the gateway a new stream for res goes to: its gateway, or of
// its gateway group the connected gateway with the fewest open streams
// (ties to the first name), so a group's gateways share the connections
// and one that drops takes only its own.
func (h *Hub) Pick(res *store.Resource) (string, error) {
	names, err := h.byLoad(res)
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// byLoad is the gateways that may take a new stream for res, the least
// busy first: its gateway, or its group's connected gateways by open
// streams, then name.
func (h *Hub) byLoad(res *store.Resource) ([]string, error) {
	if res.GatewayGroup == "" {
		return []string{res.Gateway}, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	type load struct {
		name    string
		streams int
	}
	var loads []load
	for _, g := range h.inGroup(res.GatewayGroup) {
		loads = append(loads, load{g.name, g.sess.NumStreams()})
	}
	if len(loads) == 0 {
		return nil, noGatewayOf(res.GatewayGroup)
	}
	slices.SortStableFunc(loads, func(a, b load) int { return a.streams - b.streams }) // inGroup sorted them by name
	names := make([]string, len(loads))
	for i, l := range loads {
		names[i] = l.name
	}
	return names, nil
}

// noGatewayOf is the error when no gateway of group is connected.
func noGatewayOf(group string) error {
	return fmt.Errorf("no gateway of group %s is connected: start a gateway in group %s (pamd gateways set NAME --group %s); see pamd gateways list", group, group, group)
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

// OpenFor starts a stream to the gateway Pick chooses for res, and names
// it. Should that gateway go between the choice and the open, the group's
// others are tried in the same order (least busy first) until one opens.
// The hub remembers the gateway as connectionID's (the descriptor's
// connection ID) before the stream is returned, so its records are kept
// from that gateway only (servedBy), even before the relay's record of
// the connection reaches the store.
func (h *Hub) OpenFor(res *store.Resource, connectionID string) (*yamux.Stream, string, error) {
	names, err := h.byLoad(res)
	if err != nil {
		return nil, "", err
	}
	var errs []error
	for _, name := range names {
		st, err := h.Open(name)
		if err == nil {
			h.opened.put(connectionID, name)
			return st, name, nil
		}
		errs = append(errs, err)
	}
	return nil, names[0], errors.Join(errs...)
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

// RecheckGroup re-admits the named gateway after its group changed on its
// record (pamd gateways set --group): a connection admitted to another
// group than the record's now is cut, and the gateway, reconnecting, is
// admitted to the new one (or refused, when its hello claims another).
// It also rechecks its certificate (Recheck).
func (h *Hub) RecheckGroup(name string) {
	h.Recheck(name, "certificate revoked")
	h.mu.Lock()
	gc, ok := h.gw[name]
	h.mu.Unlock()
	if !ok {
		return
	}
	group, err := h.storedGroup(name)
	if err == nil && group == gc.group {
		return
	}
	h.log.Warn("gateway cut", "gateway", name, "reason", "its gateway group changed", "from", gc.group, "to", group)
	gc.sess.Close()
}

// serves says whether this connection's gateway may serve res: it is its
// gateway, or in its group.
func (g *gatewayConn) serves(res *store.Resource) bool {
	if res.GatewayGroup != "" {
		return g.group == res.GatewayGroup
	}
	return res.Gateway == g.name
}

// openedFor is how long the hub remembers which gateway it opened a
// connection's dial stream on: far longer than the relay takes to commit
// the connection's record (it queues it before writing the descriptor,
// and commits every 20 ms), after which the store answers.
const openedFor = time.Minute

// openedLog remembers, for openedFor to twice that, the gateway each
// connection's dial stream went to: two maps, the older dropped as a whole
// when the newer is openedFor old, so remembering costs no sweep.
type openedLog struct {
	mu        sync.Mutex
	cur, prev map[string]string
	since     time.Time // when cur was started
}

func (l *openedLog) put(connectionID, gateway string) {
	if connectionID == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); l.cur == nil || now.Sub(l.since) > openedFor {
		l.prev, l.cur, l.since = l.cur, map[string]string{}, now
	}
	l.cur[connectionID] = gateway
}

func (l *openedLog) get(connectionID string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.cur[connectionID]; ok {
		return g, true
	}
	g, ok := l.prev[connectionID]
	return g, ok
}
