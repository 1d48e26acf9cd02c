package store_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// TestCheckFindsDamage damages a closed file behind the store's back, in
// each way a value can stop opening, and expects Check to name the place.
func TestCheckFindsDamage(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   string // in Check's error; "" means no error
	}{
		{"untouched", func(*bolt.Tx) error { return nil }, ""},
		{"flipped byte", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("users"))
			k, v := b.Cursor().First()
			v = append([]byte(nil), v...)
			v[len(v)-1] ^= 1
			return b.Put(k, v)
		}, "users"},
		{"value moved to another bucket", func(tx *bolt.Tx) error {
			k, v := tx.Bucket([]byte("users")).Cursor().First()
			return tx.Bucket([]byte("roles")).Put(k, append([]byte(nil), v...))
		}, "roles"},
		{"truncated value", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("index"))
			k, _ := b.Cursor().First()
			return b.Put(k, []byte{1, 2, 3})
		}, "index"},
		{"nested bucket", func(tx *bolt.Tx) error {
			_, err := tx.Bucket([]byte("audit")).CreateBucket([]byte("x"))
			return err
		}, "nested bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pamd.db")
			s, err := store.Open(path, key)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(func(tx *store.Tx) error {
				return tx.CreateUser(&store.User{ID: store.NewID(), Name: "alice"})
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.Check(); err != nil {
				t.Fatalf("fresh store: %v", err)
			}
			s.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			db.Close()
			err = storetest.CheckFile(path, key)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestStoretestOpen uses the helper as other packages do: a usable store,
// checked when the test ends (also after the test closed it itself).
func TestStoretestOpen(t *testing.T) {
	for _, closeEarly := range []bool{false, true} {
		s := storetest.Open(t)
		if err := s.Update(func(tx *store.Tx) error {
			return tx.AppendAudit(&store.AuditEvent{Actor: "admin", Action: "user.create", Outcome: "success"})
		}); err != nil {
			t.Fatal(err)
		}
		if closeEarly {
			s.Close()
		}
	}
}
