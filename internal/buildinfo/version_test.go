package buildinfo

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "dev"},
		{"nothing recorded", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "0123456789ab"},
		{"changed checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")}, "0123456789ab-dirty"},
		{"go install at a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"clean checkout at a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs("false")}, "v1.4.0"},
		{"changed checkout at a tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0+dirty"}, Settings: vcs("true")}, "0123456789ab-dirty"},
		{"checkout past a tag", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20251201220000-0123456789ab"}, Settings: vcs("false")}, "0123456789ab"},
		{"pseudo-version, no checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20251201220000-0123456789ab"}}, "v0.0.0-20251201220000-0123456789ab"},
	}
	for _, tt := range tests {
		if got := fromBuildInfo(tt.info); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLinkedVersionWins(t *testing.T) {
	if got := Version("v2.0.0"); got != "v2.0.0" {
		t.Fatalf("Version(v2.0.0) = %q", got)
	}
	if got := Version(""); got == "" {
		t.Fatal("Version() is empty")
	}
}

// TestBinaryReportsItsCommit builds pamd from this checkout, as a person
// would with go build (the flag undoes a GOFLAGS=-buildvcs=false), and
// with a release tag linked in: --version says the commit, then the tag.
func TestBinaryReportsItsCommit(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to compare the build with", err)
	}
	rev := strings.TrimSpace(string(head))[:12]
	out, _ := exec.Command("git", "tag", "--points-at", "HEAD").Output()
	tags := strings.Fields(string(out)) // a clean checkout at a tag reports the tag
	bin := filepath.Join(t.TempDir(), "pamd")

	got := buildAndAsk(t, bin, "-buildvcs=true")
	if stamp, _ := exec.Command("go", "version", "-m", bin).Output(); !strings.Contains(string(stamp), "vcs.revision=") {
		// go build stamps no revision in some checkouts (a git worktree):
		// then there is nothing but dev to report, and nothing to compare.
		t.Skipf("go build stamped no VCS revision here: %s", bin)
	}
	if v := strings.TrimSuffix(got, "-dirty"); v != rev && !slices.Contains(tags, got) {
		t.Errorf("built from %s (tags %v): --version says %q", rev, tags, got)
	}
	if got := buildAndAsk(t, bin, "-buildvcs=true", "-ldflags", "-X main.version=v0.0.0-buildinfo-test"); got != "v0.0.0-buildinfo-test" {
		t.Errorf("with the version linked in: --version says %q", got)
	}
}

// buildAndAsk builds the pamd command into bin and returns what its
// --version names.
func buildAndAsk(t *testing.T, bin string, flags ...string) string {
	t.Helper()
	args := append(append([]string{"build", "-o", bin}, flags...), "github.com/pamd/pamd")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("pamd --version: %v", err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "pamd version ")
	if !ok {
		t.Fatalf("pamd --version printed %q", out)
	}
	return v
}
