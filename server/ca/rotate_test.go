package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "pamd.db"), bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustLoad(t *testing.T, st *store.Store) *Authority {
	t.Helper()
	a, err := Load(st)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func issueGateway(t *testing.T, a *Authority, st *store.Store) *x509.Certificate {
	t.Helper()
	var c *x509.Certificate
	err := st.Update(func(tx *store.Tx) (err error) {
		_, c, err = a.IssueGateway(tx, "gw1", gatewayKey(t, "ecdsa").Public(), time.Hour)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemBlocks(b []byte) int {
	n := 0
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return n
		}
		n++
	}
}

func verifiesWith(c *x509.Certificate, pool *x509.CertPool) bool {
	_, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// TestServerCARotation: start adds a next pin and a bundle; a second start,
// or a step with no rotation, is refused; complete makes the next CA the
// one the server certificate comes from.
func TestServerCARotation(t *testing.T) {
	a := mustLoad(t, openStore(t))
	old, next := a.ServerPins()
	if next != "" {
		t.Fatalf("a fresh authority rotates: %s", next)
	}
	for _, step := range []func(string, Record) error{a.CompleteRotation, a.RollbackRotation} {
		if err := step(TypeServer, nil); !errors.Is(err, ErrRotation) {
			t.Fatalf("a step without a rotation: %v", err)
		}
	}
	if err := a.StartRotation(TypeServer, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.StartRotation(TypeServer, nil); !errors.Is(err, ErrRotation) {
		t.Fatalf("a second start: %v", err)
	}
	cur, next := a.ServerPins()
	if cur != old || next == "" || next == old {
		t.Fatalf("pins during the overlap: %s, %s (was %s)", cur, next, old)
	}
	if n := pemBlocks(a.Bundle(TypeServer)); n != 2 {
		t.Fatalf("the bundle holds %d certificates during the overlap", n)
	}
	if _, fp, _ := a.ServerCertificate("", "", "127.0.0.1:0", ""); fp != old {
		t.Fatalf("the server certificate comes from %s during the overlap, not the current CA", fp)
	}
	if err := a.CompleteRotation(TypeServer, nil); err != nil {
		t.Fatal(err)
	}
	if cur, n := a.ServerPins(); cur != next || n != "" {
		t.Fatalf("pins after complete: %s, %q (want %s)", cur, n, next)
	}
	if _, fp, _ := a.ServerCertificate("", "", "127.0.0.1:0", ""); fp != next {
		t.Fatalf("the server certificate comes from %s after complete, not the new CA %s", fp, next)
	}
	rots, err := a.Rotations()
	if err != nil || rots[0].Type != TypeServer || rots[0].Previous != old || rots[0].Next != "" {
		t.Fatalf("status after complete: %+v, %v", rots, err)
	}
}

// TestGatewayCARotationAcrossRestart: during the overlap renewals come from
// the next CA and both verify; a restart (Load again) keeps the overlap;
// complete retires the old CA, whose certificates are then told apart.
func TestGatewayCARotationAcrossRestart(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	before := issueGateway(t, a, st)
	if err := a.StartRotation(TypeGateway, nil); err != nil {
		t.Fatal(err)
	}
	during := issueGateway(t, a, st)
	_, gwCA, _ := a.Certificates()
	if during.CheckSignatureFrom(gwCA) == nil {
		t.Fatal("a certificate issued during the overlap comes from the current gateway CA")
	}
	if !a.FromNextGatewayCA(during.SerialNumber.String()) || a.FromNextGatewayCA(before.SerialNumber.String()) {
		t.Fatal("the status does not tell which gateway certificate came from the next CA")
	}
	// A certificate whose transaction fails was never handed out: neither
	// the store nor the Authority's memory may count it.
	var lost *x509.Certificate
	failed := errors.New("the enrolment failed after the certificate was made")
	if err := st.Update(func(tx *store.Tx) (err error) {
		if _, lost, err = a.IssueGateway(tx, "gw1", gatewayKey(t, "ecdsa").Public(), time.Hour); err != nil {
			t.Fatal(err)
		}
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("the update: %v, want the injected failure", err)
	}
	if a.FromNextGatewayCA(lost.SerialNumber.String()) || mustLoad(t, st).FromNextGatewayCA(lost.SerialNumber.String()) {
		t.Fatal("a certificate from a rolled-back transaction counts as issued by the next CA")
	}
	for _, c := range []*x509.Certificate{before, during} {
		if !verifiesWith(c, a.GatewayClientCAs()) {
			t.Fatalf("%s is not trusted during the overlap", c.SerialNumber)
		}
	}

	a = mustLoad(t, st) // a restart mid-overlap
	if !a.FromNextGatewayCA(during.SerialNumber.String()) || !verifiesWith(during, a.GatewayClientCAs()) {
		t.Fatal("the overlap did not survive a restart")
	}
	if err := a.CompleteRotation(TypeGateway, nil); err != nil {
		t.Fatal(err)
	}
	if !a.RetiredGatewayCert(before) || a.RetiredGatewayCert(during) {
		t.Fatal("after complete, the old CA's certificate is not told apart from the new one's")
	}
	_, gwCA, _ = a.Certificates()
	if during.CheckSignatureFrom(gwCA) != nil {
		t.Fatal("the next gateway CA did not become the current one")
	}
	a = mustLoad(t, st)
	if !a.RetiredGatewayCert(before) {
		t.Fatal("the retired gateway CA was forgotten across a restart")
	}
	if after := issueGateway(t, a, st); after.CheckSignatureFrom(gwCA) != nil {
		t.Fatal("after complete, renewals do not come from the new gateway CA")
	}
}

// TestRotationRollback: the next CA is dropped, what it signed is no longer
// trusted, and issuing goes on from the current CA.
func TestRotationRollback(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	_, gwCA, resCA := a.Certificates()
	for _, typ := range []string{TypeGateway, TypeResource, TypeDBClient} {
		if err := a.StartRotation(typ, nil); err != nil {
			t.Fatal(err)
		}
	}
	during := issueGateway(t, a, st)
	for _, typ := range []string{TypeGateway, TypeResource, TypeDBClient} {
		if err := a.RollbackRotation(typ, nil); err != nil {
			t.Fatal(err)
		}
		if n := pemBlocks(a.Bundle(typ)); n != 1 {
			t.Fatalf("%s: the bundle holds %d certificates after the rollback", typ, n)
		}
	}
	a = mustLoad(t, st)
	if verifiesWith(during, a.GatewayClientCAs()) {
		t.Fatal("a certificate from the dropped CA is still trusted")
	}
	gw2, res2 := func() (*x509.Certificate, *x509.Certificate) { _, g, r := a.Certificates(); return g, r }()
	if !gw2.Equal(gwCA) || !res2.Equal(resCA) {
		t.Fatal("a rollback changed the current CA")
	}
	if c := issueGateway(t, a, st); c.CheckSignatureFrom(gwCA) != nil {
		t.Fatal("after a rollback, certificates do not come from the current CA")
	}
	rots, _ := a.Rotations()
	for _, r := range rots {
		if r.Next != "" || r.Previous != "" {
			t.Fatalf("status after the rollback: %+v", r)
		}
	}
}

// TestResourceCARotationReissues: after complete, the SQL Server
// certificate of a resource is issued again, from the new resource CA.
func TestResourceCARotationReissues(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	res := &store.Resource{ID: "r1", Name: "db"}
	first, _, err := a.ResourceCertificate(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StartRotation(TypeResource, nil); err != nil {
		t.Fatal(err)
	}
	if during, _, _ := a.ResourceCertificate(res); during != first {
		t.Fatal("the resource certificate changed during the overlap")
	}
	if err := a.CompleteRotation(TypeResource, nil); err != nil {
		t.Fatal(err)
	}
	after, _, err := a.ResourceCertificate(res)
	if err != nil || after == first {
		t.Fatalf("the resource certificate was not issued again after complete: %v", err)
	}
	c, _ := pki.DecodeCert([]byte(after))
	_, _, resCA := a.Certificates()
	if c.CheckSignatureFrom(resCA) != nil {
		t.Fatal("the re-issued resource certificate is not from the new resource CA")
	}
}

// TestSSHUserCARotation: the next key is kept beside the signing one
// (across a restart); complete makes it sign, rollback drops it; a
// removed resource's next key goes from the rotation state.
func TestSSHUserCARotation(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	for _, id := range []string{"r1", "r2", "r3"} {
		if err := st.Update(func(tx *store.Tx) error {
			return tx.CreateResource(&store.Resource{ID: id, Name: "box-" + id, Type: "ssh"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	cur, _, err := a.ResourceKey("ssh-ca", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CompleteSSHRotation("r1", nil); !errors.Is(err, ErrRotation) {
		t.Fatalf("complete without a rotation: %v", err)
	}
	if err := a.StartSSHRotation("r1", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.StartSSHRotation("r1", nil); !errors.Is(err, ErrRotation) {
		t.Fatalf("a second start: %v", err)
	}
	a = mustLoad(t, st) // a restart mid-overlap
	next, err := a.NextResourceKey("ssh-ca", "r1")
	if err != nil || next == nil {
		t.Fatalf("no next key during the overlap: %v", err)
	}
	if k, _, _ := a.ResourceKey("ssh-ca", "r1"); !bytes.Equal(k.PublicKey().Marshal(), cur.PublicKey().Marshal()) {
		t.Fatal("the signing key changed during the overlap")
	}
	if rots, err := a.SSHRotations(); err != nil || len(rots) != 1 || rots[0].ResourceID != "r1" || rots[0].Next == rots[0].Fingerprint {
		t.Fatalf("status: %+v %v", rots, err)
	}
	if err := a.CompleteSSHRotation("r1", nil); err != nil {
		t.Fatal(err)
	}
	if k, _, _ := a.ResourceKey("ssh-ca", "r1"); !bytes.Equal(k.PublicKey().Marshal(), next.PublicKey().Marshal()) {
		t.Fatal("the next key does not sign after complete")
	}
	if n, _ := a.NextResourceKey("ssh-ca", "r1"); n != nil {
		t.Fatal("a next key after complete")
	}

	if err := a.StartSSHRotation("r1", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.RollbackSSHRotation("r1", nil); err != nil {
		t.Fatal(err)
	}
	if k, _, _ := a.ResourceKey("ssh-ca", "r1"); !bytes.Equal(k.PublicKey().Marshal(), next.PublicKey().Marshal()) {
		t.Fatal("a rollback changed the signing key")
	}
	if n, _ := a.NextResourceKey("ssh-ca", "r1"); n != nil {
		t.Fatal("a next key after the rollback")
	}

	// Removed resources: forgotten in their removal's transaction, or
	// dropped at the next step of any rotation.
	for _, id := range []string{"r2", "r3"} {
		if err := a.StartSSHRotation(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Update(func(tx *store.Tx) error {
		for _, id := range []string{"r2", "r3"} {
			res, err := tx.Resource(id)
			if err != nil {
				return err
			}
			if err := tx.DeleteResource(res); err != nil {
				return err
			}
		}
		return a.ForgetSSHRotation(tx, "r2")
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.NextResourceKey("ssh-ca", "r2"); n != nil {
		t.Fatal("a removed resource's next key is kept")
	}
	if err := a.StartRotation(TypeResource, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.NextResourceKey("ssh-ca", "r3"); n != nil {
		t.Fatal("a removed resource's next key is kept after a step")
	}
}

// TestADSetupScriptDuringRotation: while the db-client CA is rotated, the
// Active Directory script publishes both CAs to RootCA and NTAuthCA.
func TestADSetupScriptDuringRotation(t *testing.T) {
	a := mustLoad(t, openStore(t))
	if err := a.StartRotation(TypeDBClient, nil); err != nil {
		t.Fatal(err)
	}
	script, err := a.ADSetupScript("erp", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certutil -f -dspublish $caFile NTAuthCA", "certutil -f -dspublish $nextFile NTAuthCA", "certutil -f -dspublish $nextFile RootCA",
		strings.TrimSpace(string(a.nextCertPEM(TypeDBClient)))} {
		if !strings.Contains(script, want) {
			t.Fatalf("the script lacks %q:\n%s", want, script)
		}
	}
}

// TestCompletedRotationRetires: after complete, a certificate from the
// retired server CA is no longer in the gateway pool, the retired CA's key
// is not kept (in memory or in the store), a rollback is refused with what
// to do, and until the server serves a certificate from the new CA the
// pins still name the served one (with the new one beside it).
func TestCompletedRotationRetires(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	cert, _, err := a.ServerCertificate("", "", "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	a.Serving(cert.Certificate)
	oldServer := a.pair(TypeServer)
	// A certificate the server CA signed (as before the gateway CA existed).
	key := gatewayKey(t, "ecdsa")
	der, err := pki.Issue(oldServer.cert, oldServer.key, key.Public(), pki.Leaf{CommonName: "gw1", Usage: x509.ExtKeyUsageClientAuth, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := x509.ParseCertificate(der)
	if !verifiesWith(legacy, a.GatewayClientCAs()) {
		t.Fatal("a certificate of the current server CA is not in the gateway pool")
	}
	oldPin := pki.Fingerprint(oldServer.cert.Raw)
	if err := a.StartRotation(TypeServer, nil); err != nil {
		t.Fatal(err)
	}
	_, nextPin := a.ServerPins()
	if err := a.CompleteRotation(TypeServer, nil); err != nil {
		t.Fatal(err)
	}
	if verifiesWith(legacy, a.GatewayClientCAs()) {
		t.Fatal("the retired server CA is still trusted for gateway certificates")
	}
	if cur, next := a.ServerPins(); cur != oldPin || next != nextPin {
		t.Fatalf("before the new certificate is served: pins %s, %s; want %s, %s", cur, next, oldPin, nextPin)
	}
	cert, _, err = a.ServerCertificate("", "", "127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	a.Serving(cert.Certificate)
	if cur, next := a.ServerPins(); cur != nextPin || next != "" {
		t.Fatalf("after: pins %s, %s; want %s alone", cur, next, nextPin)
	}
	if err := a.RollbackRotation(TypeServer, nil); !errors.Is(err, ErrRotation) || !strings.Contains(err.Error(), "a completed rotation cannot be rolled back: rotate again") {
		t.Fatalf("rollback after complete: %v", err)
	}
	if a.prev[TypeServer].key != nil {
		t.Fatal("the retired CA's key is kept in memory")
	}
	if err := st.View(func(tx *store.Tx) error {
		b, err := tx.Secret(rotationSecret)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "PRIVATE KEY") {
			t.Error("the rotation state keeps a private key with no rotation in progress")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if b := mustLoad(t, st); b.prev[TypeServer].cert == nil || b.prev[TypeServer].key != nil {
		t.Fatal("after a restart: the retired CA is not its certificate alone")
	}
}

// TestCompleteSwapsOnce: a step's state is in memory whole once it
// returns, and a step the store refuses leaves memory as it was.
func TestCompleteSwapsOnce(t *testing.T) {
	st := openStore(t)
	a := mustLoad(t, st)
	if err := a.StartRotation(TypeGateway, nil); err != nil {
		t.Fatal(err)
	}
	nextFP := pki.Fingerprint(a.next[TypeGateway].cert.Raw)
	oldFP := pki.Fingerprint(a.pair(TypeGateway).cert.Raw)
	failing := func(*store.Tx, string) error { return errors.New("audit refused") }
	if err := a.CompleteRotation(TypeGateway, failing); err == nil {
		t.Fatal("a step whose audit failed succeeded")
	}
	if pki.Fingerprint(a.pair(TypeGateway).cert.Raw) != oldFP || a.nextCertPEM(TypeGateway) == nil {
		t.Fatal("a step the store refused changed memory")
	}
	if err := a.CompleteRotation(TypeGateway, nil); err != nil {
		t.Fatal(err)
	}
	if pki.Fingerprint(a.pair(TypeGateway).cert.Raw) != nextFP || a.nextCertPEM(TypeGateway) != nil || pki.Fingerprint(a.prev[TypeGateway].cert.Raw) != oldFP {
		t.Fatal("after complete: current, next and previous are not the new, none and the old")
	}
}

// TestLoadDropsARetiredKey: a rotation state written with a retired CA's
// key (before keys were dropped) loses it at the next start.
func TestLoadDropsARetiredKey(t *testing.T) {
	st := openStore(t)
	mustLoad(t, st)
	kp, keyPEM, err := newKeyPair("old")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *store.Tx) error {
		return writeRotations(tx, &rotationState{Prev: map[string]storedPair{TypeServer: {Cert: string(kp.certPEM), Key: string(keyPEM)}}})
	}); err != nil {
		t.Fatal(err)
	}
	a := mustLoad(t, st)
	if p := a.prev[TypeServer]; p.cert == nil || p.key != nil {
		t.Fatal("the retired CA is not its certificate alone in memory")
	}
	if err := st.View(func(tx *store.Tx) error {
		b, err := tx.Secret(rotationSecret)
		if err == nil && strings.Contains(string(b), "PRIVATE KEY") {
			t.Error("the retired CA's key is still in the store")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
