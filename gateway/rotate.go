package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/mongoproxy"
	"github.com/pamd/pamd/proxy/mssqlproxy"
	"github.com/pamd/pamd/proxy/sshproxy"
)

// targetOps are what rotating needs from a protocol: log in with a
// credential, make the change, and (SSH keys) retire the old credential.
type targetOps struct {
	login  func(context.Context, *tunnel.Descriptor) error
	change func(context.Context, *tunnel.Rotation) error
	retire func(context.Context, *tunnel.Rotation) error
}

func opsFor(r *tunnel.Rotation) (targetOps, error) {
	switch {
	case r.Account.Protocol == "ssh" && r.Account.Auth == "key":
		return targetOps{sshproxy.Login, sshproxy.AuthorizeKey, sshproxy.RemoveOldKey}, nil
	case r.Account.Protocol == "ssh":
		return targetOps{login: sshproxy.Login, change: sshproxy.ChangePassword}, nil
	case r.Account.Protocol == "mongodb":
		return targetOps{login: mongoproxy.Login, change: mongoproxy.ChangePassword}, nil
	case r.Account.Protocol == "mssql":
		return targetOps{login: mssqlproxy.Login, change: mssqlproxy.ChangePassword}, nil
	}
	return targetOps{}, fmt.Errorf("this gateway cannot rotate %s accounts", r.Account.Protocol)
}

// rotate changes an account's credential on its target: change, verify by
// logging in with the new credential, then retire the old one. The old
// credential stays usable until the new one is proven.
func (g *gateway) rotate(ctx context.Context, st *yamux.Stream, r *tunnel.Rotation) {
	ops, err := opsFor(r)
	if err != nil {
		tunnel.Refuse("pamd gateway: %v", err).WriteTo(st)
		return
	}
	tunnel.OK().WriteTo(st)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res := g.rotateOn(ctx, ops, r)
	// Targets' messages might echo what they were given: scrub it.
	res.Error, res.Warning = scrub(res.Error, r), scrub(res.Warning, r)
	g.log.Info("rotation", "account", r.Account.Resource+"/"+r.Account.Account, "verified", res.Verified, "error", res.Error, "warning", res.Warning)
	detail, _ := json.Marshal(res)
	(&tunnel.Message{Type: tunnel.MsgRotationResult, Detail: detail}).WriteTo(st)
}

func (g *gateway) rotateOn(ctx context.Context, ops targetOps, r *tunnel.Rotation) tunnel.RotationResult {
	next := r.Account
	next.Password = r.NewPassword
	if r.NewPrivateKey != "" {
		next.PrivateKey, next.Passphrase = r.NewPrivateKey, ""
	}
	// A resumed rotation may find the change already made; a fresh one
	// does not try the new credential first (a failed login can count
	// toward a lockout on the target).
	done := r.Resume && ops.login(ctx, &next) == nil
	if !done {
		if err := ops.change(ctx, r); err != nil {
			return g.notVerified(ctx, ops, r, "changing the credential on the target failed: "+err.Error())
		}
		proxy.PauseForTest(g.log, "changed")
		if err := ops.login(ctx, &next); err != nil {
			return g.notVerified(ctx, ops, r, "the target took the change, but the new credential does not log in: "+err.Error())
		}
	}
	proxy.PauseForTest(g.log, "verified")
	res := tunnel.RotationResult{Verified: true}
	if ops.retire != nil {
		if err := ops.retire(ctx, r); err != nil {
			res.Warning = "the new credential works, but retiring the old one failed: " + err.Error()
		}
	}
	return res
}

// notVerified reports a rotation whose new credential was not proven, and
// whether the old one still logs in (then the server drops the new one).
func (g *gateway) notVerified(ctx context.Context, ops targetOps, r *tunnel.Rotation, why string) tunnel.RotationResult {
	return tunnel.RotationResult{Error: why, OldWorks: ops.login(ctx, &r.Account) == nil}
}

// scrub removes the rotation's credentials from a text.
func scrub(text string, r *tunnel.Rotation) string {
	return tunnel.Scrub(text, r.Secrets()...)
}
