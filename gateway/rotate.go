package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// opsFor asks the account's protocol handler how to rotate it.
func (g *gateway) opsFor(r *tunnel.Rotation) (*proxy.TargetOps, error) {
	rot, ok := g.handlers[r.Account.Protocol].(proxy.Rotator)
	if !ok {
		return nil, fmt.Errorf("this gateway cannot rotate %s accounts", r.Account.Protocol)
	}
	return rot.Rotation(r)
}

// rotate changes an account's credential on its target: change, verify by
// logging in with the new credential, then retire the old one. The old
// credential stays usable until the new one is proven.
func (g *gateway) rotate(ctx context.Context, st *yamux.Stream, r *tunnel.Rotation) {
	ops, err := g.opsFor(r)
	if err != nil {
		proxy.Answer(st, proxy.Refuse("pamd gateway: %v", err))
		return
	}
	proxy.Answer(st, nil)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res := g.rotateOn(ctx, ops, r)
	// Targets' messages might echo what they were given: scrub it.
	res.Error, res.Warning = scrub(res.Error, r), scrub(res.Warning, r)
	g.log.Info("rotation", "account", r.Account.Resource+"/"+r.Account.Account, "verified", res.Verified, "error", res.Error, "warning", res.Warning)
	detail, _ := json.Marshal(res)
	(&tunnel.Message{Type: tunnel.MsgRotationResult, Detail: detail}).WriteTo(st)
}

func (g *gateway) rotateOn(ctx context.Context, ops *proxy.TargetOps, r *tunnel.Rotation) tunnel.RotationResult {
	next := ops.Next
	// A resumed rotation may find the change already made; a fresh one
	// does not try the new credential first (a failed login can count
	// toward a lockout on the target).
	done := r.Resume && ops.Login(ctx, next) == nil
	if !done {
		if err := ops.Change(ctx, r); err != nil {
			return g.notVerified(ctx, ops, r, "changing the credential on the target failed: "+err.Error())
		}
		proxy.PauseForTest(g.log, "changed")
		if err := ops.Login(ctx, next); err != nil {
			return g.notVerified(ctx, ops, r, "the target took the change, but the new credential does not log in: "+err.Error())
		}
	}
	proxy.PauseForTest(g.log, "verified")
	res := tunnel.RotationResult{Verified: true}
	if ops.Retire != nil {
		if err := ops.Retire(ctx, r); err != nil {
			res.Warning = "the new credential works, but retiring the old one failed: " + err.Error()
		}
	}
	return res
}

// notVerified reports a rotation whose new credential was not proven, and
// whether the old one still logs in (then the server drops the new one).
func (g *gateway) notVerified(ctx context.Context, ops *proxy.TargetOps, r *tunnel.Rotation, why string) tunnel.RotationResult {
	return tunnel.RotationResult{Error: why, OldWorks: ops.Login(ctx, &r.Account) == nil}
}

// scrub removes the rotation's credentials from a text.
func scrub(text string, r *tunnel.Rotation) string {
	return tunnel.Scrub(text, r.Secrets()...)
}
