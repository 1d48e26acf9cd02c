package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/store"
)

// Rotating pamd's CAs (ca/rotate.go): start, complete and roll back, each
// audited (ca.rotate.start, ca.rotate.complete, ca.rotate.rollback), and
// the status. A step on the server or gateway CA asks the connected
// gateways to renew now, so they pin the server CAs and hold a
// certificate from the gateway CA that issues now.

// rotationSteps are the steps, by the name in the route.
var rotationSteps = map[string]func(*ca.Authority, string, ca.Record) error{
	"start":    (*ca.Authority).StartRotation,
	"complete": (*ca.Authority).CompleteRotation,
	"rollback": (*ca.Authority).RollbackRotation,
}

// setPinHeaders tells every API client what it is to pin (see
// api.PinHeader): a logged-in CLI follows a rotation of the server
// CA by these.
func (s *API) setPinHeaders(w http.ResponseWriter) {
	if s.ca == nil {
		return
	}
	current, next := s.ca.ServerPins()
	w.Header().Set(api.PinHeader, current)
	if next != "" {
		w.Header().Set(api.NextPinHeader, next)
	} else {
		w.Header().Del(api.NextPinHeader)
	}
}

// handleCARotate: POST /api/v1/ca/{name}/rotate/{step} (start, complete,
// rollback).
func (s *API) handleCARotate(w http.ResponseWriter, r *http.Request) error {
	typ, step := r.PathValue("name"), r.PathValue("step")
	do, ok := rotationSteps[step]
	if !ok {
		return api.Errorf(http.StatusNotFound, "no rotation step %q: want start, complete or rollback", step)
	}
	if typ == "ssh" {
		return s.rotateSSH(w, r, step)
	}
	if !slices.Contains(ca.Rotatable, typ) {
		return api.Errorf(http.StatusNotFound, "no CA of type %q: want server, gateway, resource, db-client or ssh", typ)
	}
	c := auth.CallerOf(r)
	action, target := "ca.rotate."+step, typ+" CA"
	if typ == ca.TypeGateway && step == "complete" && r.URL.Query().Get("force") != "true" {
		if err := s.strandedGateways(); err != nil {
			return s.rotationRefused(c, action, target, err)
		}
	}
	if err := do(s.ca, typ, s.recordRotation(c, action, target)); err != nil {
		return s.rotationRefused(c, action, target, err)
	}
	if typ == ca.TypeServer && step == "complete" && s.cfg.ServerCARotated != nil {
		// Served before the pins are advertised without the old CA (the
		// CA advertises the served chain's pin until then).
		if err := s.cfg.ServerCARotated(); err != nil {
			s.log.Error("server CA rotation: certificate not re-issued", "err", err)
			s.trail.Event(c.User.Name, action, target, "failure", c.Source, err.Error())
			return api.Errorf(http.StatusInternalServerError, "%v", err) // says to restart pamd server
		}
	}
	var cut []string
	if typ == ca.TypeGateway && step == "complete" && s.hub != nil {
		cut = s.hub.CutRetiredGatewayCA() // before the renew-now: a retired certificate renews nothing
	}
	rot, err := s.rotation(typ)
	if err != nil {
		return err
	}
	rot.Note = s.rotationNote(typ, step)
	if len(cut) > 0 {
		rot.Note += "; cut, on a certificate from the old gateway CA (enrol them again): " + strings.Join(cut, ", ")
	}
	s.setPinHeaders(w) // the pins after the step: the CLI that took it follows at once
	if typ == ca.TypeServer || typ == ca.TypeGateway {
		if missed := s.renewGateways(r.Context(), typ+" CA rotation: "+step); len(missed) > 0 {
			rot.Note += "; not told to renew now (gone offline, or too old to know the request; they renew at half their certificate's lifetime): " + strings.Join(missed, ", ")
		}
	}
	writeJSON(w, http.StatusOK, rot)
	return nil
}

// strandedGateways refuses a gateway CA's complete while an enrolled
// gateway still holds a certificate from the current gateway CA: it would
// have to enrol again (pamd ca rotate complete --force takes that).
func (s *API) strandedGateways() error {
	rot, err := s.rotation(ca.TypeGateway)
	if err != nil || rot.NextFingerprint == "" {
		return err // no rotation: the step says so
	}
	var left []string
	for _, g := range rot.Gateways {
		if g.CA == "current" {
			name := g.Name
			if !g.Online {
				name += " (offline)"
			}
			left = append(left, name)
		}
	}
	if len(left) == 0 {
		return nil
	}
	return fmt.Errorf("%w: these gateways still hold a certificate from the current gateway CA, and would have to enrol again after complete: %s. Bring them online so they renew (pamd ca rotate status shows who holds which), or complete with --force", ca.ErrRotation, strings.Join(left, ", "))
}

// recordRotation is the audit event of a step, written in its transaction.
func (s *API) recordRotation(c *auth.Caller, action, target string) ca.Record {
	return func(tx *store.Tx, detail string) error {
		return audit.Append(tx, c.User.Name, action, target, "success", c.Source, detail)
	}
}

// rotationRefused answers a step that failed, audited as a failure; one
// that does not fit the rotation's state is a conflict.
func (s *API) rotationRefused(c *auth.Caller, action, target string, err error) error {
	s.trail.Event(c.User.Name, action, target, "failure", c.Source, err.Error())
	if !errors.Is(err, ca.ErrRotation) {
		return err
	}
	return api.Errorf(http.StatusConflict, "%v", err)
}

// renewGateways asks the connected gateways to renew now (their replies,
// not the renewals, are waited for, briefly) and returns those that did
// not take the request.
func (s *API) renewGateways(ctx context.Context, reason string) []string {
	if s.hub == nil {
		return nil
	}
	return s.hub.RenewAll(ctx, reason, 5*time.Second)
}

// rotationNote says what a step means for those who trust the CA.
func (s *API) rotationNote(typ, step string) string {
	if typ == ca.TypeServer && s.operatorCertificate() {
		return "the server serves the operator's certificate (--tls-cert): the server CA's rotation does not change what clients and gateways pin"
	}
	switch typ + " " + step {
	case "server start":
		return "clients and gateways learn the next CA's fingerprint and trust both; the server presents its certificate from the current CA until complete"
	case "server complete":
		return "the server presents a certificate from the new CA; clients and gateways that learned its fingerprint go on, others log in (or enrol) again with the new fingerprint"
	case "gateway start":
		return "connected gateways were asked to renew from the next CA; see pamd ca rotate status for who holds which, and complete once all hold the next one"
	case "gateway complete":
		return "certificates from the old gateway CA are refused from now on: such a gateway must enrol again"
	case "resource start", "db-client start":
		return "pamd ca export --type " + typ + " gives both certificates: distribute them to what trusts this CA before complete"
	case "resource complete":
		return "SQL Server certificates are issued from the new CA on next use"
	case "db-client complete":
		return "db-client certificates and the CRL are signed by the new CA"
	}
	return "the next CA was dropped"
}

// operatorCertificate reports whether the server serves the operator's
// certificate rather than one of its server CA.
func (s *API) operatorCertificate() bool {
	return s.ca.OperatorCertificate()
}

// handleCARotations: GET /api/v1/ca/rotations, every CA's rotation state,
// then the SSH user CAs being rotated.
func (s *API) handleCARotations(w http.ResponseWriter, r *http.Request) error {
	out := []api.CARotation{}
	for _, typ := range ca.Rotatable {
		rot, err := s.rotation(typ)
		if err != nil {
			return err
		}
		out = append(out, rot)
	}
	ssh, err := s.sshRotations("")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, append(out, ssh...))
	return nil
}

// sshSteps are the steps of an SSH user CA's rotation, by the route's name.
var sshSteps = map[string]func(*ca.Authority, string, ca.Record) error{
	"start":    (*ca.Authority).StartSSHRotation,
	"complete": (*ca.Authority).CompleteSSHRotation,
	"rollback": (*ca.Authority).RollbackSSHRotation,
}

// rotateSSH: POST /api/v1/ca/ssh/rotate/{step}?resource=NAME, a step of an
// ssh resource's user CA rotation.
func (s *API) rotateSSH(w http.ResponseWriter, r *http.Request, step string) error {
	name := r.URL.Query().Get("resource")
	var res *store.Resource
	err := s.st.View(func(tx *store.Tx) (err error) { res, err = tx.ResourceByName(name); return err })
	if errors.Is(err, store.ErrNotFound) {
		return api.Errorf(http.StatusNotFound, "resource %q not found: --type ssh rotates the user CA of an ssh resource (--resource NAME)", name)
	}
	if err != nil {
		return err
	}
	if k, _ := s.kinds.Of(res.Type); k == nil {
		return api.Errorf(http.StatusBadRequest, "resource %s has an unknown type %s", res.Name, res.Type)
	} else if _, ok := k.(kind.UserCA); !ok {
		return api.Errorf(http.StatusBadRequest, "resource %s is %s: only ssh resources have a user CA", res.Name, res.Type)
	}
	c := auth.CallerOf(r)
	action, target := "ca.rotate."+step, "ssh CA of "+res.Name
	if err := sshSteps[step](s.ca, res.ID, s.recordRotation(c, action, target)); err != nil {
		return s.rotationRefused(c, action, target, err)
	}
	out := api.CARotation{Type: "ssh", Resource: res.Name}
	if rots, err := s.sshRotations(res.ID); err != nil {
		return err
	} else if len(rots) == 1 {
		out = rots[0]
	}
	if out.Fingerprint == "" { // no longer rotated: the key that signs now
		key, _, err := s.ca.ResourceKey("ssh-ca", res.ID)
		if err != nil {
			return err
		}
		out.Fingerprint = gossh.FingerprintSHA256(key.PublicKey())
	}
	out.Note = sshRotationNote(res.Name, step)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func sshRotationNote(resource, step string) string {
	switch step {
	case "start":
		return "pamd resources ssh-ca " + resource + " now gives both keys: install them on the targets (TrustedUserCAKeys) before complete"
	case "complete":
		return "certificates are signed by the new key; the old key's line can go from the targets"
	}
	return "the next key was dropped; the current key signs as before"
}

// sshRotations are the SSH user CA rotations in progress (of one resource
// when resourceID is set), named by resource.
func (s *API) sshRotations(resourceID string) ([]api.CARotation, error) {
	rots, err := s.ca.SSHRotations()
	if err != nil {
		return nil, err
	}
	var out []api.CARotation
	err = s.st.View(func(tx *store.Tx) error {
		for _, r := range rots {
			if resourceID != "" && r.ResourceID != resourceID {
				continue
			}
			res, err := tx.Resource(r.ResourceID)
			if err != nil {
				continue // removed since
			}
			out = append(out, api.CARotation{Type: "ssh", Resource: res.Name, Fingerprint: r.Fingerprint, NextFingerprint: r.Next, StartedAt: r.StartedAt})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out, err
}

// rotation is typ's rotation state; for the gateway CA in rotation, with
// which CA each gateway's certificate is from.
func (s *API) rotation(typ string) (api.CARotation, error) {
	rots, err := s.ca.Rotations()
	if err != nil {
		return api.CARotation{}, err
	}
	var out api.CARotation
	for _, r := range rots {
		if r.Type == typ {
			out = api.CARotation{Type: r.Type, Fingerprint: r.Fingerprint, NextFingerprint: r.Next, StartedAt: r.StartedAt, PreviousFingerprint: r.Previous}
		}
	}
	if typ != ca.TypeGateway || out.NextFingerprint == "" {
		return out, nil
	}
	err = s.st.View(func(tx *store.Tx) error {
		all, err := tx.Gateways()
		for _, g := range all {
			if g.CertSerial == "" {
				continue // revoked
			}
			which := "current"
			if s.ca.FromNextGatewayCA(g.CertSerial) {
				which = "next"
			}
			out.Gateways = append(out.Gateways, api.CARotationGateway{Name: g.Name, CA: which, Online: s.hub != nil && s.hub.Online(g.Name)})
		}
		return err
	})
	sort.Slice(out.Gateways, func(i, j int) bool { return out.Gateways[i].Name < out.Gateways[j].Name })
	return out, err
}

// pin is the fingerprint clients and gateways pin now.
func (s *API) pin() string {
	if s.ca == nil {
		return s.cfg.CAFingerprint
	}
	current, _ := s.ca.ServerPins()
	return current
}
