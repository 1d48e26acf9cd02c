package relay

import (
	"testing"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// The catalog answers a connection's resource and account from memory until
// either is written, and never answers with what was there before a write.
func TestCatalogFollowsWrites(t *testing.T) {
	st := storetest.Open(t)
	res := &store.Resource{ID: store.NewID(), Name: "db", Type: "tcp", Gateway: "gw", Host: "10.0.0.1", Port: 5432}
	acct := &store.Account{ID: store.NewID(), ResourceID: res.ID, Name: "app", Username: "app", Password: "first"}
	must(t, st.Update(func(tx *store.Tx) error {
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		return tx.CreateAccount(acct)
	}))
	c := &catalog{st: st}
	sess := &store.Session{ID: "s1", ResourceID: res.ID, AccountID: acct.ID}
	check := func(wantPassword, wantHost string) {
		t.Helper()
		r, a, err := c.get(sess)
		if err != nil {
			t.Fatal(err)
		}
		if a.Password != wantPassword || r.Host != wantHost {
			t.Fatalf("got password %q host %q, want %q %q", a.Password, r.Host, wantPassword, wantHost)
		}
		a.Password, r.Host = "changed by the caller", "changed by the caller"
	}
	check("first", "10.0.0.1")
	check("first", "10.0.0.1") // from memory, and the caller's change did not reach it

	// Writes of anything else keep the catalog.
	gen := st.CatalogGeneration()
	must(t, st.Update(func(tx *store.Tx) error { return tx.PutSession(&store.Session{ID: "s2"}) }))
	must(t, st.Batch(func(tx *store.Tx) error {
		return tx.PutConnection(&store.Connection{ID: "c1", SessionID: "s2"})
	}))
	if st.CatalogGeneration() != gen {
		t.Fatal("a session or connection write moved the catalog generation")
	}

	acct.Password = "rotated"
	must(t, st.Update(func(tx *store.Tx) error { return tx.PutAccount(acct) }))
	check("rotated", "10.0.0.1")
	res.Host = "10.0.0.2"
	must(t, st.Batch(func(tx *store.Tx) error { return tx.PutResource(res) }))
	check("rotated", "10.0.0.2")

	// A write that fails moves nothing, and what it wrote is not served.
	acct.Password = "rolled back"
	gen = st.CatalogGeneration()
	st.Update(func(tx *store.Tx) error { tx.PutAccount(acct); return errRollback })
	if st.CatalogGeneration() != gen {
		t.Fatal("a rolled back write moved the catalog generation")
	}
	check("rotated", "10.0.0.2")

	must(t, st.Update(func(tx *store.Tx) error { return tx.DeleteAccount(acct) }))
	if _, _, err := c.get(sess); err == nil {
		t.Fatal("a removed account is still served")
	}
}

var errRollback = errorString("roll back")

type errorString string

func (e errorString) Error() string { return string(e) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
