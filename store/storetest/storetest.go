package storetest

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/pamd/pamd/store"
)

// Open opens a new store in t.TempDir() under a fresh random master key.
// The store is closed and checked when the test ends; a test may close it
// earlier itself.
func Open(t testing.TB) *store.Store {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	return OpenFile(t, filepath.Join(t.TempDir(), "pamd.db"), key)
}

// OpenFile is Open for a file and key the test chooses (one it opens again,
// or inspects on disk).
func OpenFile(t testing.TB, path string, key []byte) *store.Store {
	t.Helper()
	s, err := store.Open(path, key)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		s.Close() // the test may have closed it already; closing twice is harmless
		if err := CheckFile(path, key); err != nil {
			t.Errorf("storetest: the test left %s inconsistent: %v", path, err)
		}
	})
	return s
}

// CheckFile opens the store at path (which must not be open) and checks it.
func CheckFile(path string, key []byte) error {
	s, err := store.Open(path, key)
	if err != nil {
		return err
	}
	err = s.Check()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}
