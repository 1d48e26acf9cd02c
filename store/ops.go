package store

import (
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCannotWrite wraps a commit the file system refused: a full disk, or
// a read-only or failing one. The transaction was rolled back; nothing it
// wrote is kept and nothing before it is lost.
var ErrCannotWrite = errors.New("store: cannot write the data file")

// commit runs fn in a write transaction and commits it, telling a failed
// commit (ErrCannotWrite) from fn's own error.
func (s *Store) commit(fn func(*Tx) error) error {
	defer s.timed(true, time.Now())
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCannotWrite, err)
	}
	t := &Tx{tx: tx, s: s}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("%w: %v", ErrCannotWrite, err)
		s.lastWrite.Store(&err)
		return err
	}
	if t.catalog {
		s.catalogGen.Add(1)
	}
	s.lastWrite.Store(nil)
	return nil
}

// WriteHealth is why the store last failed to commit, or nil when its
// last commit worked. Space free on the data file's disk below minFree
// counts as a failure too: a small write may still fit in the file's free
// pages while the next one that grows it fails.
func (s *Store) WriteHealth() error {
	if p := s.lastWrite.Load(); p != nil {
		return *p
	}
	if free, ok := freeBytes(s.db.Path()); ok && free < minFree {
		return fmt.Errorf("%w: %d bytes free on its disk", ErrCannotWrite, free)
	}
	return nil
}

// minFree is the space below which the store's disk counts as full.
const minFree = 1 << 20

// Backup writes a consistent copy of the whole data file to w while the
// store stays in use: a read transaction's view of it, still sealed, so a
// restore is starting a server on the copy with the same master key.
// size, when not nil, learns the copy's size before it is written.
func (s *Store) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if size != nil {
			size(tx.Size())
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile is Backup of a data file no process has open.
func BackupFile(path string, w io.Writer) (int64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return 0, fmt.Errorf("store: %s is in use by a running pamd server: back it up through the API (pamd backup without --data-dir)", path)
	}
	if err != nil {
		return 0, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) (err error) { n, err = tx.WriteTo(w); return err })
	return n, err
}

// Rekey re-wraps the data key of the data file at path, which no process
// may have open, from oldKey to newKey. Nothing else is rewritten: every
// value is sealed with the data key. The change is one bbolt transaction,
// so whatever stops it midway leaves a file that opens with exactly one
// of the two keys (KeyOpens tells which).
func Rekey(path string, oldKey, newKey []byte) error {
	old, err := newSealer(oldKey)
	if err != nil {
		return fmt.Errorf("store: old master key: %w", err)
	}
	next, err := newSealer(newKey)
	if err != nil {
		return fmt.Errorf("store: new master key: %w", err)
	}
	db, err := openExclusive(path)
	if err != nil {
		return err
	}
	defer db.Close()
	ad := placeAD(bucketMeta, []byte("datakey"))
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil || meta.Get([]byte("datakey")) == nil {
			return fmt.Errorf("store: %s holds no data key", path)
		}
		dataKey, err := old.open(meta.Get([]byte("datakey")), ad)
		if err != nil {
			return ErrWrongMasterKey
		}
		return meta.Put([]byte("datakey"), next.seal(dataKey, ad))
	})
}

// KeyOpens says whether key opens the data file at path (no process may
// have it open); it writes nothing.
func KeyOpens(path string, key []byte) (bool, error) {
	k, err := newSealer(key)
	if err != nil {
		return false, err
	}
	db, err := openExclusive(path)
	if err != nil {
		return false, err
	}
	defer db.Close()
	ok := false
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil || meta.Get([]byte("datakey")) == nil {
			return fmt.Errorf("store: %s holds no data key", path)
		}
		_, err := k.open(meta.Get([]byte("datakey")), placeAD(bucketMeta, []byte("datakey")))
		ok = err == nil
		return nil
	})
	return ok, err
}

func openExclusive(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is in use by another pamd process: stop the server first", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// AuditHead is the newest audit event's sequence number and hash: what an
// operator keeps outside pamd to tell a rolled-back copy from the current
// store (see AuditHolds).
func (t *Tx) AuditHead() (uint64, string, error) {
	h, err := t.auditHead()
	if err != nil {
		return 0, "", err
	}
	return h.Seq, h.Hash, nil
}

// AuditHolds says whether the chain holds an event with the given hash (at
// seq, when seq is not 0). A copy older than the head an operator kept
// does not.
func (t *Tx) AuditHolds(seq uint64, hash string) (bool, error) {
	if seq != 0 {
		ev, err := get[AuditEvent](t, bucketAudit, seqKey(seq))
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return err == nil && ev.Hash == hash, err
	}
	found := false
	err := t.AuditEvents(func(ev *AuditEvent) bool { found = ev.Hash == hash; return !found })
	return found, err
}
