package buildinfo

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// Version returns linked when the build set it (-ldflags "-X
// main.version=v1.2.0", as scripts/release does), else the version the
// binary's build info gives (see fromBuildInfo).
func Version(linked string) string {
	if linked != "" {
		return linked
	}
	info, _ := debug.ReadBuildInfo()
	return fromBuildInfo(info)
}

// fromBuildInfo prefers, in order: a release version of the main module
// (go install ...@v1.2.0, or a build of a clean checkout at a tag); the
// VCS revision, short, with "-dirty" when the tree had changes; any other
// module version (a pseudo-version, from a build outside a checkout);
// "dev" when the build recorded nothing (go build -buildvcs=false, go run).
func fromBuildInfo(info *debug.BuildInfo) string {
	if info == nil {
		return "dev"
	}
	mod := info.Main.Version
	if mod == "(devel)" {
		mod = ""
	}
	if mod != "" && !pseudoVersion.MatchString(mod) && !strings.HasSuffix(mod, "+dirty") {
		return mod
	}
	if rev := setting(info, "vcs.revision"); rev != "" {
		if len(rev) > 12 {
			rev = rev[:12] // as long as a pseudo-version's: unique in any real history
		}
		if setting(info, "vcs.modified") == "true" {
			rev += "-dirty"
		}
		return rev
	}
	if mod != "" {
		return mod
	}
	return "dev"
}

// pseudoVersion matches the timestamp-and-revision end of a Go
// pseudo-version (v0.0.0-20250101120000-0123456789ab, optionally +dirty):
// it names a commit, not a release.
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}(\+dirty)?$`)

func setting(info *debug.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
