package relay

import (
	"sync"

	"github.com/pamd/pamd/store"
)

// catalog keeps the resources and accounts that connections are opened
// to, so that a new connection reads nothing from the store: it is dropped
// whole whenever the store's catalog generation moves (a resource or an
// account was written: an update, a rotation, a removal).
type catalog struct {
	st  *store.Store
	mu  sync.Mutex
	gen uint64
	m   map[catalogKey]catalogEntry
}

type catalogKey struct{ resource, account string }

type catalogEntry struct {
	res  store.Resource
	acct store.Account
}

// get is the session's resource and account, as copies the caller may
// change (their maps are shared and must be left as they are).
func (c *catalog) get(sess *store.Session) (*store.Resource, *store.Account, error) {
	key := catalogKey{sess.ResourceID, sess.AccountID}
	gen := c.st.CatalogGeneration() // before the read: a write after it moves it
	c.mu.Lock()
	if c.gen != gen || c.m == nil {
		c.gen, c.m = gen, map[catalogKey]catalogEntry{}
	}
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return &e.res, &e.acct, nil
	}
	var res *store.Resource
	var acct *store.Account
	err := c.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.Resource(sess.ResourceID); err != nil {
			return err
		}
		acct, err = tx.Account(sess.ResourceID, sess.AccountID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.m[key] = catalogEntry{res: *res, acct: *acct}
	}
	c.mu.Unlock()
	return res, acct, nil
}
