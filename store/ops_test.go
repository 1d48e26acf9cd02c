package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A backup taken while writes go on opens with the same key, holds
// everything committed before it began, and is whole.
func TestBackupDuringWritesIsConsistent(t *testing.T) {
	s, _ := openTemp(t)
	put := func(i int) error {
		return s.Update(func(tx *Tx) error { return tx.PutSecret(fmt.Sprintf("k%04d", i), bytes.Repeat([]byte{'v'}, 512)) })
	}
	for i := range 200 {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes while the backup runs
		defer wg.Done()
		for i := 200; i < 400; i++ {
			put(i)
		}
	}()
	var buf bytes.Buffer
	var announced int64
	n, err := s.Backup(&buf, func(n int64) { announced = n })
	wg.Wait()
	if err != nil || n != int64(buf.Len()) || n == 0 || n != announced {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(path, testKey(1))
	if err != nil {
		t.Fatalf("the backup does not open with the same key: %v", err)
	}
	defer restored.Close()
	if err := restored.Check(); err != nil {
		t.Fatalf("the backup is not whole: %v", err)
	}
	restored.View(func(tx *Tx) error {
		for i := range 200 {
			if _, err := tx.Secret(fmt.Sprintf("k%04d", i)); err != nil {
				t.Errorf("k%04d, written before the backup, is missing from it: %v", i, err)
			}
		}
		return nil
	})
	if _, err := BackupFile(filepath.Join(t.TempDir(), "none.db"), &buf); err == nil {
		// bbolt refuses to create a file read-only: a missing file is an error.
		t.Fatal("backup of a missing file succeeded")
	}
}

// Rekey leaves a file that opens with the new key only; the data is the
// same.
func TestRekeyMovesTheFileToTheNewKey(t *testing.T) {
	s, path := openTemp(t)
	s.Update(func(tx *Tx) error { return tx.PutSecret("kept", []byte("value")) })
	s.Close()
	if err := Rekey(path, testKey(9), testKey(2)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("rekey with a wrong old key: %v", err)
	}
	if err := Rekey(path, testKey(1), testKey(2)); err != nil {
		t.Fatal(err)
	}
	if ok, err := KeyOpens(path, testKey(1)); ok || err != nil {
		t.Fatalf("the old key still opens the file: %v %v", ok, err)
	}
	if ok, err := KeyOpens(path, testKey(2)); !ok || err != nil {
		t.Fatalf("the new key does not open the file: %v %v", ok, err)
	}
	if _, err := Open(path, testKey(1)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("open with the old key: %v", err)
	}
	again, err := Open(path, testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	var v []byte
	again.View(func(tx *Tx) (err error) { v, err = tx.Secret("kept"); return })
	if string(v) != "value" {
		t.Fatalf("after rekey the secret reads %q", v)
	}
	// Back to the first key, so openTemp's check at cleanup opens it.
	again.Close()
	if err := Rekey(path, testKey(2), testKey(1)); err != nil {
		t.Fatal(err)
	}
}

// A copy from before the head an operator kept does not hold it.
func TestAuditHoldsTellsARolledBackCopy(t *testing.T) {
	s, _ := openTemp(t)
	audit := func(action string) {
		s.Update(func(tx *Tx) error { return tx.AppendAudit(&AuditEvent{Time: time.Now(), Actor: "t", Action: action}) })
	}
	audit("one")
	var old bytes.Buffer
	s.Backup(&old, nil)
	audit("two")
	var seq uint64
	var hash string
	s.View(func(tx *Tx) (err error) { seq, hash, err = tx.AuditHead(); return })
	if seq != 2 || len(hash) != 64 {
		t.Fatalf("head %d %q", seq, hash)
	}
	check := func(st *Store, want bool) {
		t.Helper()
		for _, at := range []uint64{seq, 0} {
			var ok bool
			if err := st.View(func(tx *Tx) (err error) { ok, err = tx.AuditHolds(at, hash); return }); err != nil || ok != want {
				t.Fatalf("holds(%d) = %v %v, want %v", at, ok, err, want)
			}
		}
	}
	check(s, true)
	path := filepath.Join(t.TempDir(), "old.db")
	os.WriteFile(path, old.Bytes(), 0o600)
	rolledBack, err := Open(path, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer rolledBack.Close()
	check(rolledBack, false)
}

// A full disk fails the commit with ErrCannotWrite and loses nothing: what
// was committed before stays, and writes work again once there is room.
// The disk is a 4 MiB tmpfs the test mounts (this needs root, as the e2e
// suite does).
func TestFullDiskIsCannotWrite(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "pamd-test-full", dir).CombinedOutput(); err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatalf("mount a tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	path := filepath.Join(dir, "pamd.db")
	s, err := Open(path, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(func(tx *Tx) error { return tx.PutSecret("before", []byte("kept")) }); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 3<<20+512<<10)) // short writes past the end are fine: the disk is full
	f.Close()
	big := bytes.Repeat([]byte{'x'}, 1<<20)
	err = s.Update(func(tx *Tx) error { return tx.PutSecret("too-big", big) })
	if !errors.Is(err, ErrCannotWrite) {
		t.Fatalf("a write to a full disk: %v, want ErrCannotWrite", err)
	}
	os.Remove(filler)
	if err := s.Update(func(tx *Tx) error { return tx.PutSecret("after", []byte("room again")) }); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
	s.View(func(tx *Tx) error {
		if v, err := tx.Secret("before"); err != nil || string(v) != "kept" {
			t.Errorf("the value committed before the full disk: %q %v", v, err)
		}
		if _, err := tx.Secret("too-big"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the refused write was kept: %v", err)
		}
		return nil
	})
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
