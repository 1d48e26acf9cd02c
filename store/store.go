package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors callers test for.
var (
	ErrWrongMasterKey = errors.New("store: the master key does not open this data file (wrong --master-key-file or PAMD_MASTER_KEY?)")
	ErrNotFound       = errors.New("store: not found")
	ErrExists         = errors.New("store: already exists")
)

const (
	bucketMeta  = "meta"
	bucketIndex = "index"
)

var allBuckets = []string{
	bucketMeta, bucketIndex, bucketUsers, bucketRoles, bucketTokens, bucketGateways,
	bucketEnroll, bucketResources, bucketAccounts, bucketSessions, bucketConnections,
	bucketAudit, bucketSecrets, bucketRecordings, bucketRecordingSeen,
	bucketSSO,
	bucketRequests,
}

// Store is the sealed bbolt file. It is safe for concurrent use.
type Store struct {
	db     *bolt.DB
	data   *sealer
	idxKey []byte
	// observe, when set, learns each transaction's time (see Observe).
	observe func(write bool, d time.Duration)
	// lastWrite is the error of the last commit when it failed (see
	// WriteHealth).
	lastWrite atomic.Pointer[error]
	// catalogGen moves after every commit that wrote a resource or an
	// account (see CatalogGeneration).
	catalogGen atomic.Uint64
}

// Observe has fn learn the time of every transaction from now on, commit
// included (for metrics). Call it before the store is shared.
func (s *Store) Observe(fn func(write bool, d time.Duration)) { s.observe = fn }

// timed reports a transaction that began at start to the observer.
func (s *Store) timed(write bool, start time.Time) {
	if s.observe != nil {
		s.observe(write, time.Since(start))
	}
}

// Open opens (creating if absent) the store at path. masterKey must be 32
// bytes. With the wrong key it returns ErrWrongMasterKey and writes nothing.
func Open(path string, masterKey []byte) (*Store, error) {
	master, err := newSealer(masterKey)
	if err != nil {
		return nil, fmt.Errorf("store: master key: %w", err)
	}
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is in use by another pamd process", path)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db}
	var dataKey []byte
	// Read first: a wrong key must be found before any write transaction.
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			return nil
		}
		wrapped := meta.Get([]byte("datakey"))
		if wrapped == nil {
			return nil
		}
		k, err := master.open(wrapped, placeAD(bucketMeta, []byte("datakey")))
		if err != nil {
			return ErrWrongMasterKey
		}
		dataKey = k
		return nil
	})
	if err != nil {
		db.Close()
		if fresh {
			os.Remove(path)
		}
		return nil, err
	}
	if dataKey == nil {
		dataKey = make([]byte, 32)
		rand.Read(dataKey)
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists([]byte(bucketMeta))
			if err != nil {
				return err
			}
			return meta.Put([]byte("datakey"), master.seal(dataKey, placeAD(bucketMeta, []byte("datakey"))))
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: initialise %s: %w", path, err)
		}
	}
	if s.data, err = newSealer(dataKey); err != nil {
		db.Close()
		return nil, err
	}
	s.idxKey = deriveKey(dataKey, "pamd/index/v1")
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close flushes and closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// CatalogGeneration moves after every committed write of a resource or an
// account. A cache of them that read this number before it read the store
// is current as long as the number has not moved.
func (s *Store) CatalogGeneration() uint64 { return s.catalogGen.Load() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	defer s.timed(false, time.Now())
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, s: s}) })
}

// Update runs fn in a read-write transaction; an error from fn rolls it
// back, and a commit the disk refuses is ErrCannotWrite.
func (s *Store) Update(fn func(*Tx) error) error { return s.commit(fn) }

// Batch is Update for small independent writes from many goroutines: bbolt
// commits them together. fn may run more than once, so it must be idempotent.
func (s *Store) Batch(fn func(*Tx) error) error {
	defer s.timed(true, time.Now())
	var fnErr error
	var catalog atomic.Bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		t := &Tx{tx: tx, s: s}
		fnErr = fn(t)
		if t.catalog {
			catalog.Store(true)
		}
		return fnErr
	})
	if err == nil && catalog.Load() {
		s.catalogGen.Add(1)
	}
	if err != nil && err != fnErr {
		err = fmt.Errorf("%w: %v", ErrCannotWrite, err)
		s.lastWrite.Store(&err)
	}
	return err
}

// GenerateMasterKey returns a new random key in the text form that
// ParseMasterKey reads.
func GenerateMasterKey() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// ParseMasterKey reads a 32-byte key written as base64 or hex.
func ParseMasterKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if k, err := base64.StdEncoding.DecodeString(text); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := hex.DecodeString(text); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, errors.New("store: a master key is 32 bytes written as base64 (44 characters) or hex (64)")
}

// LoadOrCreateMasterKey reads the key file, or creates it (mode 0600) with a
// new key when it does not exist. created reports the latter.
func LoadOrCreateMasterKey(file string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		text := GenerateMasterKey()
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("store: create master key file: %w", err)
		}
		if _, err := f.WriteString(text + "\n"); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("store: write master key file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("store: write master key file: %w", err)
		}
		k, err := ParseMasterKey(text)
		return k, true, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: read master key file: %w", err)
	}
	k, err := ParseMasterKey(string(b))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", file, err)
	}
	return k, false, nil
}
