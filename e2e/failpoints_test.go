//go:build failpoints

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pamd/pamd/store"
)

// Tests that need the store's test hook (store.Tx.RewriteAuditEvent), which
// only builds with -tags failpoints have; scripts/test runs the e2e tests
// with it, and nofailpoints_test.go says so when they run without.

func TestAuditVerifyDetectsAnEditedEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.ok("", "audit", "verify")
	if !strings.Contains(out, "audit chain intact") {
		t.Fatalf("verify on an untouched log: %q", out)
	}
	e.stopServer()
	// An attacker with the master key rewrites event 2.
	keyText, _ := os.ReadFile(filepath.Join(e.dir, "server", "master.key"))
	key, err := store.ParseMasterKey(string(keyText))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(e.dir, "server", "pamd.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx *store.Tx) error {
		return tx.RewriteAuditEvent(2, func(ev *store.AuditEvent) { ev.Actor = "someone-else" })
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.startServer()
	_, errOut, err := e.run("", "audit", "verify")
	if err == nil || !strings.Contains(errOut, "broken at event 2") {
		t.Fatalf("verify after the edit: err %v, stderr %q", err, errOut)
	}
}
