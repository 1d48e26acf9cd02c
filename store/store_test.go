package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pamd.db")
	s, err := Open(path, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	// As storetest.Open does (which these in-package tests cannot import):
	// at the end the file opens again and every value in it opens.
	t.Cleanup(func() {
		s.Close()
		again, err := Open(path, testKey(1))
		if err != nil {
			t.Fatalf("reopen after the test: %v", err)
		}
		defer again.Close()
		if err := again.Check(); err != nil {
			t.Errorf("the test left the store inconsistent: %v", err)
		}
	})
	return s, path
}

func TestWrongMasterKeyWritesNothing(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Update(func(tx *Tx) error {
		return tx.CreateUser(&User{ID: NewID(), Name: "alice"})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadFile(path)
	st1, _ := os.Stat(path)

	_, err := Open(path, testKey(2))
	if !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open with wrong key: %v", err)
	}
	after, _ := os.ReadFile(path)
	st2, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("opening with the wrong key changed the file")
	}
	// The right key still works.
	s, err = Open(path, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(func(tx *Tx) error { _, err := tx.UserByName("alice"); return err }); err != nil {
		t.Fatal(err)
	}
}

func TestNoPlaintextInFile(t *testing.T) {
	s, path := openTemp(t)
	secrets := []string{"alice-the-admin", "prod-database-7", "Sup3rS3cretPassw0rd", "dbuser-ops"}
	err := s.Update(func(tx *Tx) error {
		if err := tx.CreateUser(&User{ID: NewID(), Name: secrets[0]}); err != nil {
			return err
		}
		r := &Resource{ID: NewID(), Name: secrets[1], Type: "tcp", Host: "10.0.0.1", Port: 1}
		if err := tx.CreateResource(r); err != nil {
			return err
		}
		if err := tx.CreateAccount(&Account{ID: NewID(), ResourceID: r.ID, Name: "acct", Username: secrets[3], Password: secrets[2]}); err != nil {
			return err
		}
		return tx.AppendAudit(&AuditEvent{Actor: secrets[0], Action: "resource.create", Target: secrets[1]})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, _ := os.ReadFile(path)
	for _, sec := range secrets {
		if bytes.Contains(raw, []byte(sec)) {
			t.Errorf("data file contains %q in the clear", sec)
		}
	}
}

func TestSealedValueCannotMove(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	a, b := &User{ID: "a", Name: "a"}, &User{ID: "b", Name: "b", Roles: []string{"admin"}}
	s.Update(func(tx *Tx) error { tx.CreateUser(a); return tx.CreateUser(b) })
	// Copy b's sealed value over a's key: it must not open.
	s.db.Update(func(btx *boltTx) error {
		bk := btx.Bucket([]byte(bucketUsers))
		return bk.Put([]byte("a"), append([]byte(nil), bk.Get([]byte("b"))...))
	})
	err := s.View(func(tx *Tx) error { _, err := tx.User("a"); return err })
	if err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("moved value opened: %v", err)
	}
	// Check finds it too, naming the bucket; then the moved value goes, so
	// the check at the end of the test passes.
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "users 61") {
		t.Fatalf("Check after a moved value: %v", err)
	}
	s.db.Update(func(btx *boltTx) error { return btx.Bucket([]byte(bucketUsers)).Delete([]byte("a")) })
	if err := s.Check(); err != nil {
		t.Fatalf("Check after removing the moved value: %v", err)
	}
}

func TestNamesUniqueAndDeleted(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		r := &Resource{ID: NewID(), Name: "db"}
		if err := tx.CreateResource(r); err != nil {
			return err
		}
		if err := tx.CreateResource(&Resource{ID: NewID(), Name: "db"}); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate name: %v", err)
		}
		if err := tx.CreateAccount(&Account{ID: NewID(), ResourceID: r.ID, Name: "ops"}); err != nil {
			return err
		}
		if err := tx.DeleteResource(r); err != nil {
			return err
		}
		if _, err := tx.ResourceByName("db"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted resource still found: %v", err)
		}
		if _, err := tx.AccountByName(r.ID, "ops"); !errors.Is(err, ErrNotFound) {
			t.Errorf("account of deleted resource still found: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func appendEvents(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Update(func(tx *Tx) error {
			return tx.AppendAudit(&AuditEvent{Time: time.Now(), Actor: "admin", Action: "user.create", Outcome: "success"})
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditChain(t *testing.T) {
	verify := func(s *Store) (int, *AuditBreak) {
		var n int
		var brk *AuditBreak
		if err := s.View(func(tx *Tx) (err error) { n, brk, err = tx.VerifyAudit(); return }); err != nil {
			t.Fatal(err)
		}
		return n, brk
	}
	tests := []struct {
		name    string
		tamper  func(s *Store)
		wantSeq uint64
	}{
		{"intact", func(*Store) {}, 0},
		{"edited", func(s *Store) {
			s.Update(func(tx *Tx) error {
				return rewriteAuditEvent(tx, 3, func(e *AuditEvent) { e.Actor = "mallory" })
			})
		}, 3},
		{"edited and rehashed", func(s *Store) {
			s.Update(func(tx *Tx) error {
				return rewriteAuditEvent(tx, 2, func(e *AuditEvent) { e.Action = "nothing"; e.Hash = chainHash(e) })
			})
		}, 3},
		{"deleted", func(s *Store) {
			s.db.Update(func(btx *boltTx) error { return btx.Bucket([]byte(bucketAudit)).Delete(seqKey(4)) })
		}, 4},
		{"tail cut", func(s *Store) {
			s.db.Update(func(btx *boltTx) error { return btx.Bucket([]byte(bucketAudit)).Delete(seqKey(5)) })
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			defer s.Close()
			appendEvents(t, s, 5)
			tt.tamper(s)
			n, brk := verify(s)
			if tt.wantSeq == 0 {
				if brk != nil || n != 5 {
					t.Fatalf("intact chain reported n=%d break=%+v", n, brk)
				}
				return
			}
			if brk == nil || brk.Seq != tt.wantSeq {
				t.Fatalf("break = %+v, want at %d", brk, tt.wantSeq)
			}
		})
	}
}

func TestMasterKeyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "master.key")
	k1, created, err := LoadOrCreateMasterKey(file)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("create: %v %v %d", err, created, len(k1))
	}
	st, _ := os.Stat(file)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	k2, created, err := LoadOrCreateMasterKey(file)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
	os.WriteFile(file, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateMasterKey(file); err == nil {
		t.Fatal("a malformed key file was accepted")
	}
}

// TestSchemaOneIsMarkedTwo: a store of schema 1 (before server-numbered
// recordings) opens and is marked 2, so that an older pamd, which would
// overwrite server-numbered records, refuses it; a store newer than this
// build is refused.
func TestSchemaOneIsMarkedTwo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pamd.db")
	open := func() (*Store, error) { return Open(path, testKey(1)) }
	setSchema := func(v int) {
		t.Helper()
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Update(func(tx *Tx) error { return put(tx, bucketMeta, schemaKey, &schemaRecord{Version: v}) }); err != nil {
			t.Fatal(err)
		}
	}
	schema := func() int {
		t.Helper()
		s, err := open()
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		var rec *schemaRecord
		if err := s.View(func(tx *Tx) (err error) { rec, err = get[schemaRecord](tx, bucketMeta, schemaKey); return err }); err != nil {
			t.Fatal(err)
		}
		return rec.Version
	}
	if got := schema(); got != 2 || SchemaVersion != 2 {
		t.Fatalf("a new store has schema %d (this build %d), want 2", got, SchemaVersion)
	}
	setSchema(1)
	if got := schema(); got != 2 {
		t.Fatalf("a schema 1 store opened as %d, want 2", got)
	}
	setSchema(3)
	if _, err := open(); err == nil || !strings.Contains(err.Error(), "upgrade pamd") {
		t.Fatalf("open a schema 3 store: %v", err)
	}
}
