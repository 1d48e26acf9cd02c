package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check reads the whole file: bbolt's own consistency check of its pages,
// then every value in every bucket, each of which must open under the data
// key in its place (the wrapped data key in meta opened when the store did).
// It returns every problem found, joined, or nil. It is meant for tests and
// offline checks: it holds a read transaction while it walks the file.
func (s *Store) Check() error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, fmt.Errorf("store: check: %w", err))
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			bucket := string(name)
			return b.ForEach(func(k, v []byte) error {
				switch {
				case v == nil:
					errs = append(errs, fmt.Errorf("store: check: %s %x: a nested bucket, which pamd never makes", bucket, k))
				case bucket == bucketMeta && string(k) == "datakey":
					// Sealed by the master key, and opened by Open.
				default:
					if _, err := s.data.open(v, placeAD(bucket, k)); err != nil {
						errs = append(errs, fmt.Errorf("store: check: %s %x: %w", bucket, k, err))
					}
				}
				return nil
			})
		})
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("store: check: %w", err))
	}
	return errors.Join(errs...)
}
