//go:build failpoints

package proxy

import (
	"log/slog"
	"os"
)

// PauseForTest stops the calling goroutine for good at the named step when
// PAMD_TEST_PAUSE_ROTATION names it, so a test can kill the process right
// there (a credential rotation's steps; see server/rotation.go). Only
// binaries built with -tags failpoints have it (the e2e tests build one);
// a release build gets the no-op in pause.go.
func PauseForTest(log *slog.Logger, step string) {
	if os.Getenv("PAMD_TEST_PAUSE_ROTATION") != step {
		return
	}
	log.Info("rotation paused for a test", "step", step)
	select {}
}
