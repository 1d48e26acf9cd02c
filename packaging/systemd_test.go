package packaging

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/pamd/pamd/cli"
)

// unit is one of packaging/systemd's units and what it must say.
type unit struct {
	file     string // in systemd/
	role     string // the pamd command it runs
	stateDir string // StateDirectory=: the data dir is /var/lib/<stateDir>
	env      string // its EnvironmentFile (optional: "-" before it)
	example  string // the example of that file, in systemd/
	// other are the variables besides pamd's own the example may set.
	other []string
}

func (u unit) dataDir() string { return "/var/lib/" + u.stateDir }

var units = []unit{
	{file: "pamd-server.service", role: "server", stateDir: "pamd", env: "/etc/pamd/server.env", example: "server.env.example"},
	{file: "pamd-gateway.service", role: "gateway", stateDir: "pamd-gateway", env: "/etc/pamd/gateway.env", example: "gateway.env.example",
		other: []string{"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"}}, // the proxy toward the server (internal/httpconnect)
}

// installedBinary is where the units expect pamd (README: install).
const installedBinary = "/usr/local/bin/pamd"

// TestUnitsVerify runs systemd-analyze verify on each unit, with ExecStart
// pointed at a pamd built from this tree (verify refuses a missing
// binary): systemd must load it without a single complaint, since it only
// warns, and ignores, an unknown or malformed directive. Then the sandbox's
// exposure, as systemd-analyze security scores it offline, must stay at
// most 2.0 of 10 (the units score 1.4).
func TestUnitsVerify(t *testing.T) {
	analyze := needSystemdAnalyze(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pamd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pamd/pamd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			text := readFile(t, filepath.Join("systemd", u.file))
			from, to := "\nExecStart="+installedBinary+" ", "\nExecStart="+bin+" "
			if strings.Count(text, from) != 1 {
				t.Fatalf("want one ExecStart=%s ... line", installedBinary)
			}
			path := filepath.Join(dir, u.file) // verify wants the unit's own name
			if err := os.WriteFile(path, []byte(strings.Replace(text, from, to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := systemdAnalyze(t, analyze, "verify", path)
			if err != nil || out != "" {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
			out, err = systemdAnalyze(t, analyze, "security", "--offline=yes", "--threshold=20", path)
			if err != nil {
				t.Errorf("systemd-analyze security: exposure over 2.0 (%v):\n%s", err, tail(out, 15))
			}
		})
	}
}

// TestUnitsSandbox reads each unit's [Service] section: the user, the data
// dir, the environment file, the command, restarts, the file limit and
// every sandbox directive pamd's units promise (README: Running in
// production).
func TestUnitsSandbox(t *testing.T) {
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			svc := parseUnit(t, filepath.Join("systemd", u.file))["Service"]
			want := map[string]string{
				"DynamicUser":             "yes",
				"StateDirectory":          u.stateDir,
				"EnvironmentFile":         "-" + u.env, // "-": the unit starts without one
				"ExecStart":               installedBinary + " " + u.role + " --data-dir " + u.dataDir(),
				"Restart":                 "on-failure",
				"RestartSec":              "5s",
				"LimitNOFILE":             "65536",
				"ProtectSystem":           "strict",
				"ProtectHome":             "yes",
				"NoNewPrivileges":         "yes",
				"PrivateTmp":              "yes",
				"PrivateDevices":          "yes",
				"ReadWritePaths":          u.dataDir(),
				"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
				"CapabilityBoundingSet":   "",
				"AmbientCapabilities":     "",
			}
			if port := defaultPort(t, u.role); port != 0 && port < 1024 {
				want["CapabilityBoundingSet"] = "CAP_NET_BIND_SERVICE"
				want["AmbientCapabilities"] = "CAP_NET_BIND_SERVICE"
			}
			for key, v := range want {
				if got := svc[key]; len(got) != 1 || got[0] != v {
					t.Errorf("%s=%q, want exactly one line %s=%s", key, got, key, v)
				}
			}
		})
	}
}

// TestUnitCommandsParse runs each unit's ExecStart arguments through pamd's
// CLI with --help: a flag the CLI does not have is bad usage (exit 2).
func TestUnitCommandsParse(t *testing.T) {
	for _, u := range units {
		args := strings.Fields(parseUnit(t, filepath.Join("systemd", u.file))["Service"]["ExecStart"][0])
		args = append([]string{"pamd"}, append(args[1:], "--help")...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, errOut strings.Builder
		code := cli.Run(ctx, "test", args, cli.Streams{Out: &out, Err: &errOut})
		cancel()
		if code != 0 || !strings.Contains(out.String(), "--data-dir") {
			t.Errorf("%s: %s: exit %d\n%s%s", u.file, strings.Join(args, " "), code, errOut.String(), tail(out.String(), 5))
		}
	}
}

// TestEnvExamples checks each example environment file against the CLI:
// every line is a setting (VAR=value) or a comment, and a commented setting
// is "#VAR=value"; every pamd variable named is one of the role's flags';
// every one of the role's flags is mentioned, but for those the unit's
// ExecStart sets (systemd would hand over the variable and the flag would
// win, silently); and no secret is set.
func TestEnvExamples(t *testing.T) {
	setting := regexp.MustCompile(`^#?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	mention := regexp.MustCompile(`\bPAMD_[A-Z0-9_]+\b`)
	for _, u := range units {
		t.Run(u.example, func(t *testing.T) {
			text := readFile(t, filepath.Join("systemd", u.example))
			flagVars, execVars := roleEnvVars(t, u)
			for i, line := range strings.Split(text, "\n") {
				m := setting.FindStringSubmatch(line)
				switch {
				case line == "" || (m == nil && strings.HasPrefix(line, "#")):
					continue
				case m == nil:
					t.Errorf("line %d: %q is neither VAR=value nor a comment", i+1, line)
					continue
				}
				name, value, commented := m[1], m[2], line[0] == '#'
				switch {
				case slices.Contains(u.other, name):
				case !strings.HasPrefix(name, "PAMD_"):
					t.Errorf("line %d: %s is not a variable pamd %s reads", i+1, name, u.role)
				case !commented && value != "" && secretVar(name):
					t.Errorf("line %d: %s is a secret: leave it commented out and empty", i+1, name)
				}
			}
			for _, name := range mention.FindAllString(text, -1) {
				if !slices.Contains(flagVars, name) {
					t.Errorf("%s names %s, which no flag of pamd %s reads", u.example, name, u.role)
				}
				if slices.Contains(execVars, name) {
					t.Errorf("%s names %s, but the unit's ExecStart sets that flag, which wins", u.example, name)
				}
			}
			for _, name := range flagVars {
				if !slices.Contains(execVars, name) && !strings.Contains(text, name) {
					t.Errorf("%s does not mention %s (a flag of pamd %s)", u.example, name, u.role)
				}
			}
		})
	}
}

// secretVar reports whether a flag's variable holds a secret pamd reads
// from the environment only (the enrollment token is spent at once, and
// the example's is a placeholder).
func secretVar(name string) bool {
	return slices.Contains([]string{"PAMD_MASTER_KEY", "PAMD_ADMIN_PASSWORD", "PAMD_REQUEST_WEBHOOK"}, name)
}

// roleEnvVars returns the variables of the role's flags, and those of the
// flags the unit's ExecStart gives.
func roleEnvVars(t *testing.T, u unit) (all, fromExec []string) {
	t.Helper()
	cmd := cli.App("test", cli.Streams{}).Command(u.role)
	if cmd == nil {
		t.Fatalf("pamd has no %s command", u.role)
	}
	execStart := strings.Fields(parseUnit(t, filepath.Join("systemd", u.file))["Service"]["ExecStart"][0])
	for _, f := range cmd.Flags {
		df, ok := f.(ucli.DocGenerationFlag)
		if !ok {
			continue
		}
		all = append(all, df.GetEnvVars()...)
		for _, name := range f.Names() {
			if slices.Contains(execStart, "--"+name) {
				fromExec = append(fromExec, df.GetEnvVars()...)
			}
		}
	}
	return all, fromExec
}

// defaultPort is the port of the role's --listen default, 0 for a role
// that does not listen.
func defaultPort(t *testing.T, role string) int {
	t.Helper()
	for _, f := range cli.App("test", cli.Streams{}).Command(role).Flags {
		sf, ok := f.(*ucli.StringFlag)
		if !ok || sf.Name != "listen" {
			continue
		}
		_, port, err := net.SplitHostPort(sf.Value)
		if err != nil {
			t.Fatalf("pamd %s --listen default %q: %v", role, sf.Value, err)
		}
		n, _ := strconv.Atoi(port)
		return n
	}
	return 0
}

// parseUnit reads a unit file: section, then key, then each line's value
// in order (a key may repeat, as ExecStart= or SystemCallFilter= do).
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	sections := map[string]map[string][]string{}
	var cur map[string][]string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a continued line; keep each directive on one", path, n)
		case line[0] == '[' && line[len(line)-1] == ']':
			cur = map[string][]string{}
			sections[line[1:len(line)-1]] = cur
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("%s:%d: %q is not KEY=value in a section", path, n, line)
			}
			key = strings.TrimSpace(key)
			cur[key] = append(cur[key], strings.TrimSpace(value))
		}
	}
	if sections["Service"] == nil {
		t.Fatalf("%s: no [Service] section", path)
	}
	return sections
}

// needSystemdAnalyze finds systemd-analyze: scripts/peers installs it
// (Debian's systemd), and under PAMD_REQUIRE_PEERS its absence fails.
func needSystemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatal("systemd-analyze (Debian's systemd) is required; scripts/peers installs it")
		}
		t.Skip("systemd-analyze not installed; scripts/peers installs it")
	}
	return path
}

func systemdAnalyze(t *testing.T, analyze string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
