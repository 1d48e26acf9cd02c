package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/server/servertest"
)

// The completion tests run the built pamd from real shells, as a person's
// shell does: the scripts ask the binary (urfave/cli reads os.Args for the
// flags' completion, so in process would not be the real thing).

var (
	buildOnce sync.Once
	builtPamd string
	buildErr  error
)

// pamdBinary builds pamd once for the package's tests, into a folder of
// its own that TestMain removes.
func pamdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pamd-completion-")
		if err != nil {
			buildErr = err
			return
		}
		builtPamd = filepath.Join(dir, "pamd")
		if out, err := exec.Command("go", "build", "-o", builtPamd, "github.com/pamd/pamd").CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtPamd
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// TestMain removes the binary the completion tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtPamd != "" {
		os.RemoveAll(filepath.Dir(builtPamd))
	}
	os.Exit(code)
}

// shell runs script in the named shell with the built pamd first in PATH
// and configDir as its config dir; it returns standard output and fails
// the test on an error or on anything written to standard error.
func shell(t *testing.T, configDir, name string, args ...string) string {
	t.Helper()
	bin := pamdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "PAMD_CONFIG_DIR="+configDir, "HOME="+configDir, "XDG_CONFIG_HOME="+configDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// needShell finds a shell; scripts/peers installs zsh and fish.
func needShell(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatalf("%s is required; scripts/peers installs it", name)
		}
		t.Skipf("%s not installed; scripts/peers installs it", name)
	}
}

// bashComplete runs the bash script's completion function on words, the
// last one being the word the cursor is on, and returns what it offers.
func bashComplete(t *testing.T, configDir string, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	script := `source <(pamd completion bash) && COMP_WORDS=(` + strings.Join(quoted, " ") + `) && COMP_CWORD=` +
		strconv.Itoa(len(words)-1) + ` && _pamd && printf '%s\n' "${COMPREPLY[@]}"`
	return strings.Fields(shell(t, configDir, "bash", "-c", script))
}

func TestCompletionScriptsLoad(t *testing.T) {
	dir := t.TempDir()
	t.Run("bash", func(t *testing.T) {
		got := shell(t, dir, "bash", "-c", "source <(pamd completion bash); complete -p pamd")
		if strings.TrimSpace(got) != "complete -o bashdefault -o default -F _pamd pamd" {
			t.Fatalf("complete -p pamd: %q", got)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		needShell(t, "zsh")
		got := shell(t, dir, "zsh", "-f", "-c", "autoload -U compinit && compinit -u -d $HOME/.zcompdump && source <(pamd completion zsh) && print -r -- $_comps[pamd]")
		if strings.TrimSpace(got) != "_pamd" {
			t.Fatalf("zsh's completion for pamd: %q, want _pamd", got)
		}
	})
	t.Run("fish", func(t *testing.T) {
		needShell(t, "fish")
		got := strings.Fields(shell(t, dir, "fish", "--no-config", "-c", "pamd completion fish | source; complete -C 'pamd se'"))
		if !slices.Equal(got, []string{"server", "sessions"}) {
			t.Fatalf("fish completes pamd se with %q, want server and sessions", got)
		}
	})
	if code, _, errOut := run(t, "", "completion", "tcsh"); code != 2 || !strings.Contains(errOut, "want bash, zsh or fish") {
		t.Fatalf("pamd completion tcsh: exit %d, %q", code, errOut)
	}
}

// TestBashCompletesCommandsAndFlags: partial commands, subcommands and
// flags complete; without a login, a RESOURCE/ACCOUNT argument quietly
// completes to nothing.
func TestBashCompletesCommandsAndFlags(t *testing.T) {
	dir := t.TempDir() // no login in it
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"pamd", "se"}, []string{"server", "sessions"}},
		{[]string{"pamd", "sessions", "te"}, []string{"terminate"}},
		{[]string{"pamd", "sessions", ""}, []string{"export", "list", "logs", "play", "show", "terminate"}},
		{[]string{"pamd", "--config-dir", dir, "gat"}, []string{"gateway", "gateways"}},
		{[]string{"pamd", "--conf"}, []string{"--config-dir"}},
		{[]string{"pamd", "connect", "--du"}, []string{"--duration"}},
		{[]string{"pamd", "gateway", "--pr"}, []string{"--proxy"}},
		{[]string{"pamd", "completion", ""}, nil},
		{[]string{"pamd", "connect", ""}, nil},
	}
	for _, tt := range tests {
		got := bashComplete(t, dir, tt.words...)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.words, got, tt.want)
		}
	}
	// Not logged in, the binary says nothing at all (shell fails on stderr).
	if got := shell(t, dir, pamdBinary(t), "connect", completionFlag); got != "" {
		t.Errorf("pamd connect %s without a login: %q", completionFlag, got)
	}
}

// TestCompletionFromCatalog: logged in, targets and resource names
// complete from the catalog, and only where the command takes one.
func TestCompletionFromCatalog(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "web")
	e.AddEchoResource(t, "wiki")
	dir := t.TempDir()
	login := &apiclient.Login{Server: e.URL, Fingerprint: e.Fingerprint, User: "admin", Token: e.Client.Token, ExpiresAt: time.Now().Add(time.Hour)}
	if err := login.Save(dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words []string
		want  []string
	}{
		{[]string{"pamd", "connect", ""}, []string{"web/any", "wiki/any"}},
		{[]string{"pamd", "connect", "wi"}, []string{"wiki/any"}},
		{[]string{"pamd", "ssh", "--log-level", "debug", "w"}, []string{"web/any", "wiki/any"}},
		{[]string{"pamd", "accounts", "rotate", ""}, []string{"web/any", "wiki/any"}},
		{[]string{"pamd", "accounts", "list", ""}, []string{"web", "wiki"}},
		{[]string{"pamd", "resources", "show", "we"}, []string{"web"}},
		{[]string{"pamd", "resources", "add", ""}, nil},
		{[]string{"pamd", "accounts", "add", ""}, nil},
		{[]string{"pamd", "connect", "web/any", ""}, nil},
		{[]string{"pamd", "connect", "--duration", ""}, nil},
	}
	for _, tt := range tests {
		got := bashComplete(t, dir, tt.words...)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.words, got, tt.want)
		}
	}
	// The binary itself, asked as the scripts ask it.
	if got := shell(t, dir, pamdBinary(t), "connect", completionFlag); got != "web/any\nwiki/any\n" {
		t.Errorf("pamd connect %s: %q", completionFlag, got)
	}
}
