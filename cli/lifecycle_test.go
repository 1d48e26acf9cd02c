package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/server/api"
)

func TestLifecycleBadUsageExits2(t *testing.T) {
	t.Setenv("PAMD_CONFIG_DIR", t.TempDir()) // not logged in: usage is checked first
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"users", "set", "erin"}, "nothing to change: give --add-role or --remove-role"},
		{[]string{"users", "set", "--add-role", "ops"}, "want one argument: NAME"},
		{[]string{"users", "reset-password"}, "want one argument: NAME"},
		{[]string{"users", "delete", "a", "b"}, "want one argument: NAME"},
		{[]string{"users", "rm"}, "want one argument: NAME"},
		{[]string{"roles", "set", "ops"}, "nothing to change"},
		{[]string{"roles", "set", "ops", "--allow", "a/b", "--add-allow", "c/d"}, "--allow replaces the role's patterns"},
		{[]string{"roles", "set", "ops", "--require-reason=maybe"}, "invalid"},
		{[]string{"gateways", "remove"}, "want one argument: NAME"},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, "", tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("pamd %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

func TestGatewayStateSaysHowLongItHasBeenAway(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		g    api.Gateway
		want string
	}{
		{api.Gateway{Online: true, LastSeen: now}, "online"},
		{api.Gateway{RevokedAt: now, LastSeen: now.Add(-time.Hour)}, "revoked"},
		{api.Gateway{}, "offline"},
		{api.Gateway{LastSeen: now.Add(-45 * time.Second)}, "offline 45s"},
		{api.Gateway{LastSeen: now.Add(-12*time.Minute - 30*time.Second)}, "offline 12m"},
		{api.Gateway{LastSeen: now.Add(-3*time.Hour - 12*time.Minute)}, "offline 3h12m"},
		{api.Gateway{LastSeen: now.Add(-53 * time.Hour)}, "offline 2d5h"},
		{api.Gateway{LastSeen: now.Add(time.Minute)}, "offline 0s"}, // a clock ahead of ours
	}
	for _, tt := range tests {
		if got := gatewayState(tt.g, now); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.g, got, tt.want)
		}
	}
}
