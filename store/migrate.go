package store

import (
	"fmt"
)

// SchemaVersion is the layout this build reads and writes.
//
//   - 1: the first.
//   - 2: a session's recordings are keyed by the server's number, in the
//     order it stores them (with the recording_seen index), not by the
//     gateway's own sequence number. An older pamd writing records by its
//     own numbers would overwrite server-numbered ones, so version 2 makes
//     it refuse the store ("upgrade pamd"); the keys of version 1 still
//     read, so its migration changes nothing else.
const SchemaVersion = 2

// migrations[i] moves a store from schema i+1 to i+2. Each runs in the same
// transaction as the version bump, so a crash leaves the old version intact.
var migrations = []func(*Tx) error{
	func(*Tx) error { return nil }, // 1 → 2: only the bump (see SchemaVersion)
}

type schemaRecord struct {
	Version int `json:"version"`
}

var schemaKey = []byte("schema")

func (s *Store) migrate() error {
	return s.Update(func(t *Tx) error {
		for _, b := range allBuckets {
			if _, err := t.tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", b, err)
			}
		}
		rec, err := get[schemaRecord](t, bucketMeta, schemaKey)
		if err == ErrNotFound {
			rec = &schemaRecord{Version: SchemaVersion}
			return put(t, bucketMeta, schemaKey, rec)
		}
		if err != nil {
			return err
		}
		if rec.Version > SchemaVersion {
			return fmt.Errorf("store: data file has schema %d, newer than this pamd (%d): upgrade pamd", rec.Version, SchemaVersion)
		}
		for v := rec.Version; v < SchemaVersion; v++ {
			if err := migrations[v-1](t); err != nil {
				return fmt.Errorf("store: migrate schema %d → %d: %w", v, v+1, err)
			}
		}
		rec.Version = SchemaVersion
		return put(t, bucketMeta, schemaKey, rec)
	})
}
