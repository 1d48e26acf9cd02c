//go:build !failpoints

package e2e

import (
	"os"
	"testing"
)

// TestAuditVerifyDetectsAnEditedEvent edits the store through a test hook
// that exists only with -tags failpoints (failpoints_test.go).
func TestAuditVerifyDetectsAnEditedEvent(t *testing.T) {
	if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
		t.Fatal("run the e2e tests with -tags failpoints (scripts/test does)")
	}
	t.Skip("needs -tags failpoints: go test -tags failpoints ./e2e")
}
