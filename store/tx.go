package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Tx is a transaction handed to View, Update and Batch closures.
type Tx struct {
	tx *bolt.Tx
	s  *Store
	// catalog is set when the transaction wrote a resource or account;
	// its commit moves the store's catalog generation.
	catalog bool
}

func (t *Tx) bucket(name string) *bolt.Bucket { return t.tx.Bucket([]byte(name)) }

// OnCommit runs f once the transaction has committed, and never if it
// does not: memory that mirrors what the transaction writes is updated
// there, so a failed commit leaves none of it behind. In a View it never
// runs; in a Batch, only the attempt that commits runs it. It runs after
// the next writer may have started, so f must check that what it mirrors
// is still current.
func (t *Tx) OnCommit(f func()) { t.tx.OnCommit(f) }

// touch notes a write to bucket for the catalog generation.
func (t *Tx) touch(bucket string) {
	if bucket == bucketResources || bucket == bucketAccounts {
		t.catalog = true
	}
}

func put[T any](t *Tx, bucket string, key []byte, v *T) error {
	t.touch(bucket)
	plain, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", bucket, err)
	}
	if err := t.bucket(bucket).Put(key, t.s.data.seal(plain, placeAD(bucket, key))); err != nil {
		return fmt.Errorf("store: put %s: %w", bucket, err)
	}
	return nil
}

func get[T any](t *Tx, bucket string, key []byte) (*T, error) {
	sealed := t.bucket(bucket).Get(key)
	if sealed == nil {
		return nil, ErrNotFound
	}
	return decode[T](t, bucket, key, sealed)
}

func decode[T any](t *Tx, bucket string, key, sealed []byte) (*T, error) {
	plain, err := t.s.data.open(sealed, placeAD(bucket, key))
	if err != nil {
		return nil, fmt.Errorf("store: %s %x: %w", bucket, key, err)
	}
	v := new(T)
	if err := json.Unmarshal(plain, v); err != nil {
		return nil, fmt.Errorf("store: decode %s: %w", bucket, err)
	}
	return v, nil
}

// list returns every value in bucket whose key starts with prefix, in key order.
func list[T any](t *Tx, bucket string, prefix []byte) ([]*T, error) {
	var out []*T
	c := t.bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		x, err := decode[T](t, bucket, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func (t *Tx) lookup(kind, name string) (string, error) {
	k := indexKey(t.s.idxKey, kind, name)
	sealed := t.bucket(bucketIndex).Get(k)
	if sealed == nil {
		return "", ErrNotFound
	}
	id, err := t.s.data.open(sealed, placeAD(bucketIndex, k))
	if err != nil {
		return "", fmt.Errorf("store: index: %w", err)
	}
	return string(id), nil
}

func (t *Tx) setIndex(kind, name, id string) error {
	k := indexKey(t.s.idxKey, kind, name)
	return t.bucket(bucketIndex).Put(k, t.s.data.seal([]byte(id), placeAD(bucketIndex, k)))
}

func (t *Tx) dropIndex(kind, name string) error {
	return t.bucket(bucketIndex).Delete(indexKey(t.s.idxKey, kind, name))
}

// createNamed stores v under a new name, refusing a name already taken.
func createNamed[T any](t *Tx, bucket, kind, name, id string, v *T) error {
	if _, err := t.lookup(kind, name); err == nil {
		return nameError(ErrExists, fmt.Sprintf("%s %q already exists", kind, name))
	}
	if err := t.setIndex(kind, name, id); err != nil {
		return err
	}
	return put(t, bucket, []byte(id), v)
}

func byName[T any](t *Tx, bucket, kind, name string) (*T, error) {
	id, err := t.lookup(kind, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nameError(err, fmt.Sprintf("%s %q not found", kind, name))
	}
	if err != nil {
		return nil, err
	}
	return get[T](t, bucket, []byte(id))
}

// namedError is ErrNotFound or ErrExists for one name, in words the API can
// pass to a user as they are (no "store:").
type namedError struct {
	sentinel error
	msg      string
}

func nameError(sentinel error, msg string) error { return &namedError{sentinel, msg} }
func (e *namedError) Error() string              { return e.msg }
func (e *namedError) Unwrap() error              { return e.sentinel }

// Users.

func (t *Tx) CreateUser(u *User) error { return createNamed(t, bucketUsers, "user", u.Name, u.ID, u) }
func (t *Tx) PutUser(u *User) error    { return put(t, bucketUsers, []byte(u.ID), u) }
func (t *Tx) User(id string) (*User, error) {
	return get[User](t, bucketUsers, []byte(id))
}
func (t *Tx) UserByName(name string) (*User, error) {
	return byName[User](t, bucketUsers, "user", name)
}
func (t *Tx) Users() ([]*User, error) { return list[User](t, bucketUsers, nil) }

// DeleteUser removes a user and its name; what names them elsewhere
// (sessions, audit events) stays.
func (t *Tx) DeleteUser(u *User) error {
	if err := t.dropIndex("user", u.Name); err != nil {
		return err
	}
	return t.bucket(bucketUsers).Delete([]byte(u.ID))
}

// Roles.

func (t *Tx) CreateRole(r *Role) error { return createNamed(t, bucketRoles, "role", r.Name, r.ID, r) }
func (t *Tx) RoleByName(name string) (*Role, error) {
	return byName[Role](t, bucketRoles, "role", name)
}
func (t *Tx) Roles() ([]*Role, error) { return list[Role](t, bucketRoles, nil) }

// PutRole stores an edited role; its name does not change.
func (t *Tx) PutRole(r *Role) error { return put(t, bucketRoles, []byte(r.ID), r) }

func (t *Tx) DeleteRole(r *Role) error {
	if err := t.dropIndex("role", r.Name); err != nil {
		return err
	}
	return t.bucket(bucketRoles).Delete([]byte(r.ID))
}

// API tokens.

func (t *Tx) PutToken(k *Token) error { return put(t, bucketTokens, []byte(k.Hash), k) }
func (t *Tx) Token(hash string) (*Token, error) {
	return get[Token](t, bucketTokens, []byte(hash))
}
func (t *Tx) DeleteToken(hash string) error { return t.bucket(bucketTokens).Delete([]byte(hash)) }
func (t *Tx) Tokens() ([]*Token, error)     { return list[Token](t, bucketTokens, nil) }

// Gateways and their enrollment tokens.

func (t *Tx) CreateGateway(g *Gateway) error {
	return createNamed(t, bucketGateways, "gateway", g.Name, g.ID, g)
}
func (t *Tx) PutGateway(g *Gateway) error { return put(t, bucketGateways, []byte(g.ID), g) }
func (t *Tx) GatewayByName(name string) (*Gateway, error) {
	return byName[Gateway](t, bucketGateways, "gateway", name)
}
func (t *Tx) Gateways() ([]*Gateway, error) { return list[Gateway](t, bucketGateways, nil) }

// DeleteGateway removes a gateway and its name: a certificate issued to it
// then names no enrolled gateway.
func (t *Tx) DeleteGateway(g *Gateway) error {
	if err := t.dropIndex("gateway", g.Name); err != nil {
		return err
	}
	return t.bucket(bucketGateways).Delete([]byte(g.ID))
}

func (t *Tx) PutEnrollToken(e *EnrollToken) error {
	return put(t, bucketEnroll, []byte(e.Hash), e)
}
func (t *Tx) EnrollToken(hash string) (*EnrollToken, error) {
	return get[EnrollToken](t, bucketEnroll, []byte(hash))
}
func (t *Tx) EnrollTokens() ([]*EnrollToken, error) {
	return list[EnrollToken](t, bucketEnroll, nil)
}
func (t *Tx) DeleteEnrollToken(hash string) error {
	return t.bucket(bucketEnroll).Delete([]byte(hash))
}

// Resources and accounts.

func (t *Tx) CreateResource(r *Resource) error {
	return createNamed(t, bucketResources, "resource", r.Name, r.ID, r)
}
func (t *Tx) PutResource(r *Resource) error { return put(t, bucketResources, []byte(r.ID), r) }
func (t *Tx) Resource(id string) (*Resource, error) {
	return get[Resource](t, bucketResources, []byte(id))
}
func (t *Tx) ResourceByName(name string) (*Resource, error) {
	return byName[Resource](t, bucketResources, "resource", name)
}
func (t *Tx) Resources() ([]*Resource, error) { return list[Resource](t, bucketResources, nil) }

// DeleteResource removes a resource and its accounts.
func (t *Tx) DeleteResource(r *Resource) error {
	accts, err := t.Accounts(r.ID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if err := t.DeleteAccount(a); err != nil {
			return err
		}
	}
	if err := t.dropIndex("resource", r.Name); err != nil {
		return err
	}
	t.touch(bucketResources)
	return t.bucket(bucketResources).Delete([]byte(r.ID))
}

func accountKey(resourceID, id string) []byte { return []byte(resourceID + "/" + id) }

func (t *Tx) CreateAccount(a *Account) error {
	kind := "account:" + a.ResourceID
	if _, err := t.lookup(kind, a.Name); err == nil {
		return nameError(ErrExists, fmt.Sprintf("account %q already exists", a.Name))
	}
	if err := t.setIndex(kind, a.Name, a.ID); err != nil {
		return err
	}
	return t.PutAccount(a)
}
func (t *Tx) PutAccount(a *Account) error {
	return put(t, bucketAccounts, accountKey(a.ResourceID, a.ID), a)
}
func (t *Tx) AccountByName(resourceID, name string) (*Account, error) {
	id, err := t.lookup("account:"+resourceID, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nameError(err, fmt.Sprintf("account %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	return get[Account](t, bucketAccounts, accountKey(resourceID, id))
}
func (t *Tx) Account(resourceID, id string) (*Account, error) {
	return get[Account](t, bucketAccounts, accountKey(resourceID, id))
}
func (t *Tx) Accounts(resourceID string) ([]*Account, error) {
	return list[Account](t, bucketAccounts, []byte(resourceID+"/"))
}
func (t *Tx) DeleteAccount(a *Account) error {
	if err := t.dropIndex("account:"+a.ResourceID, a.Name); err != nil {
		return err
	}
	t.touch(bucketAccounts)
	return t.bucket(bucketAccounts).Delete(accountKey(a.ResourceID, a.ID))
}

// Sessions and connections.

func (t *Tx) PutSession(s *Session) error { return put(t, bucketSessions, []byte(s.ID), s) }
func (t *Tx) Session(id string) (*Session, error) {
	return get[Session](t, bucketSessions, []byte(id))
}
func (t *Tx) Sessions() ([]*Session, error) { return list[Session](t, bucketSessions, nil) }

func (t *Tx) PutConnection(c *Connection) error {
	return put(t, bucketConnections, []byte(c.SessionID+"/"+c.ID), c)
}
func (t *Tx) Connections(sessionID string) ([]*Connection, error) {
	return list[Connection](t, bucketConnections, []byte(sessionID+"/"))
}

// Secrets are named blobs such as the CA key; their names are HMACs too.

func (t *Tx) Secret(name string) ([]byte, error) {
	k := indexKey(t.s.idxKey, "secret", name)
	sealed := t.bucket(bucketSecrets).Get(k)
	if sealed == nil {
		return nil, ErrNotFound
	}
	return t.s.data.open(sealed, placeAD(bucketSecrets, k))
}
func (t *Tx) PutSecret(name string, value []byte) error {
	k := indexKey(t.s.idxKey, "secret", name)
	return t.bucket(bucketSecrets).Put(k, t.s.data.seal(value, placeAD(bucketSecrets, k)))
}

// Session recordings: opaque JSON records keyed by session and a number
// the server gives each in the order it stores them, so the records of one
// session from several gateways (a gateway group) never overwrite each
// other. Stores written before keep their records under the gateway's
// numbers; they are ordered per session too, and new ones follow them.
func recordingKey(sessionID string, seq uint64) []byte {
	return fmt.Appendf(nil, "%s/%020d", sessionID, seq)
}

// AppendRecording stores a record of a session that numberedBy (a
// gateway, as the hub names its enrollment) numbered gatewaySeq, after
// the session's last one. A record it sent before (its ack lost) is not
// stored again: stored says which it was.
func (t *Tx) AppendRecording(sessionID, numberedBy string, gatewaySeq uint64, record json.RawMessage) (stored bool, err error) {
	seen := indexKey(t.s.idxKey, "recording", fmt.Sprintf("%s/%s/%d", sessionID, numberedBy, gatewaySeq))
	if t.bucket(bucketRecordingSeen).Get(seen) != nil {
		return false, nil
	}
	last, err := t.lastRecordingSeq(sessionID)
	if err != nil {
		return false, err
	}
	if err := put(t, bucketRecordings, recordingKey(sessionID, last+1), &record); err != nil {
		return false, err
	}
	n := last + 1
	return true, put(t, bucketRecordingSeen, seen, &n)
}

// lastRecordingSeq is the number of a session's newest record, 0 if none.
func (t *Tx) lastRecordingSeq(sessionID string) (uint64, error) {
	prefix := []byte(sessionID + "/")
	c := t.bucket(bucketRecordings).Cursor()
	// Past every key of the session (they are digits after the prefix),
	// then one back.
	k, _ := c.Seek(append(bytes.Clone(prefix), 0xff))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(k[len(prefix):]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("store: recording key %q: %w", k, err)
	}
	return n, nil
}

// HasRecordings says whether a session has any record, without opening one.
func (t *Tx) HasRecordings(sessionID string) bool {
	prefix := []byte(sessionID + "/")
	k, _ := t.bucket(bucketRecordings).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// RecordingsAfter returns a session's records whose stored number is
// above seq, in order, with the last one's number (seq when
// there is none): a cursor for following a session while it records.
func (t *Tx) RecordingsAfter(sessionID string, seq uint64) ([]json.RawMessage, uint64, error) {
	prefix := []byte(sessionID + "/")
	var out []json.RawMessage
	last := seq
	c := t.bucket(bucketRecordings).Cursor()
	for k, v := c.Seek(recordingKey(sessionID, seq+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		n, err := strconv.ParseUint(string(k[len(prefix):]), 10, 64)
		if err != nil {
			return nil, seq, fmt.Errorf("store: recording key %q: %w", k, err)
		}
		r, err := decode[json.RawMessage](t, bucketRecordings, k, v)
		if err != nil {
			return nil, seq, err
		}
		out, last = append(out, *r), n
	}
	return out, last, nil
}

// Recordings returns a session's records in sequence order.
func (t *Tx) Recordings(sessionID string) ([]json.RawMessage, error) {
	rs, err := list[json.RawMessage](t, bucketRecordings, []byte(sessionID+"/"))
	out := make([]json.RawMessage, len(rs))
	for i, r := range rs {
		out[i] = *r
	}
	return out, err
}
