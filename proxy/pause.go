//go:build !failpoints

package proxy

import "log/slog"

// PauseForTest is the hook rotation's kill tests stop at. In a release
// build (without the failpoints tag) it does nothing and reads nothing from
// the environment: see pause_failpoints.go for the test build's hook.
func PauseForTest(*slog.Logger, string) {}
