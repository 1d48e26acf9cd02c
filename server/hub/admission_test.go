package hub

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/store"
)

// groupFixture is a hub with a CA and enrolled gateways whose records name
// their group.
type groupFixture struct {
	h  *Hub
	st *store.Store
	a  *ca.Authority
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	h, st, a := testHub(t, nil)
	return &groupFixture{h: h, st: st, a: a}
}

// enroll makes gateway name, in group on its record, and its certificate.
func (f *groupFixture) enroll(t *testing.T, name, group string) *x509.Certificate {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	var c *x509.Certificate
	err = f.st.Update(func(tx *store.Tx) (err error) {
		g := &store.Gateway{ID: "id-" + name, Name: name, Group: group}
		if err := tx.CreateGateway(g); err != nil {
			return err
		}
		if _, c, err = f.a.IssueGateway(tx, name, key.Public(), time.Hour); err != nil {
			return err
		}
		g.CertSerial = c.SerialNumber.String()
		return tx.PutGateway(g)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *groupFixture) setGroup(t *testing.T, name, group string) {
	t.Helper()
	err := f.st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName(name)
		if err != nil {
			return err
		}
		g.Group = group
		return tx.PutGateway(g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHelloGroupIsTheStoredOne: a gateway is admitted to the group on its
// record whatever its hello says: no group in the hello is its stored
// group, the stored group is accepted, and another group (or any group
// for a gateway in none) is refused with what to do.
func TestHelloGroupIsTheStoredOne(t *testing.T) {
	f := newGroupFixture(t)
	ga := f.enroll(t, "ga", "dc1")
	gb := f.enroll(t, "gb", "")
	for _, c := range []struct {
		name  string
		leaf  *x509.Certificate
		hello string
		group string
		err   string
	}{
		{"ga", ga, "", "dc1", ""},
		{"ga", ga, "dc1", "dc1", ""},
		{"ga", ga, "dc2", "", "gateway ga is in group dc1 on the server, not dc2: run pamd gateways set ga --group dc2, or fix PAMD_GATEWAY_GROUP"},
		{"gb", gb, "", "", ""},
		{"gb", gb, "dc1", "", "gateway gb is in no group on the server, not dc1: run pamd gateways set gb --group dc1"},
		{"gb", gb, "bad name!", "", "gateway group"},
	} {
		group, err := f.h.admitHello(c.name, c.leaf, tunnel.Hello{Group: c.hello})
		switch {
		case c.err == "" && (err != nil || group != c.group):
			t.Errorf("%s with hello group %q: admitted to %q, %v; want %q", c.name, c.hello, group, err, c.group)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s with hello group %q: %q, %v; want refused: %s", c.name, c.hello, group, err, c.err)
		}
	}
}

// TestPickNeverTakesAClaimedGroup: a gateway that claims a group its
// record does not name is refused at admission, so Pick never chooses
// it; admitted without a hello group, it serves only its stored group.
func TestPickNeverTakesAClaimedGroup(t *testing.T) {
	f := newGroupFixture(t)
	leaf := f.enroll(t, "intruder", "")
	if _, err := f.h.admitHello("intruder", leaf, tunnel.Hello{Group: "dc1"}); err == nil {
		t.Fatal("a hello claiming dc1 was admitted")
	}
	group, err := f.h.admitHello("intruder", leaf, tunnel.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := connectGateway(t, f.h, "intruder", group)
	f.h.mu.Lock()
	f.h.gw["intruder"].serial = leaf.SerialNumber.String()
	f.h.mu.Unlock()
	res := &store.Resource{Name: "db", GatewayGroup: "dc1"}
	if name, err := f.h.Pick(res); err == nil {
		t.Fatalf("Pick chose %s for dc1", name)
	}
	if got := f.h.Serving(res); len(got) != 0 {
		t.Fatalf("Serving dc1 = %v", got)
	}
	// The admin puts it in dc1: its connection is cut to be admitted
	// again in dc1.
	f.h.RecheckGroup("intruder")
	if srv.IsClosed() {
		t.Fatal("RecheckGroup cut a gateway whose group did not change")
	}
	f.setGroup(t, "intruder", "dc1")
	f.h.RecheckGroup("intruder")
	select {
	case <-srv.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("a gateway whose group changed stayed connected")
	}
	if group, err := f.h.admitHello("intruder", leaf, tunnel.Hello{Group: "dc1"}); err != nil || group != "dc1" {
		t.Fatalf("re-admitted to %q, %v", group, err)
	}
}
