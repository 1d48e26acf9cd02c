package cli

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/apiclient"
)

// run runs the CLI in process with stdin and returns its exit status and
// what it printed. The context ends after a few seconds, so a command that
// should have been refused but starts a role ends too.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	code := Run(ctx, "test", append([]string{"pamd"}, args...), Streams{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestUnknownCommandExits2(t *testing.T) {
	for _, args := range [][]string{
		{"nosuch"},
		{"nosuch", "--flag"},
		{"users", "nosuch"},
		{"sessions", "nosuch", "ID"},
		{"help", "nosuch"},
	} {
		code, _, errOut := run(t, "", args...)
		if code != 2 || !strings.Contains(errOut, `unknown command "nosuch"`) {
			t.Errorf("pamd %s: exit %d, stderr %q; want 2 and unknown command", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestBadUsageExits2(t *testing.T) {
	t.Setenv("PAMD_MASTER_KEY", "")
	t.Setenv("PAMD_ADMIN_PASSWORD", "")
	safe := []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"} // were a role to start anyway
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nosuch"}, "flag provided but not defined"},
		{[]string{"users", "list", "--nosuch"}, "flag provided but not defined: -nosuch (see pamd users list --help)"},
		{[]string{"connect", "db/ops", "--duration", "soon"}, "invalid value"},
		{[]string{"audit", "list", "--limit"}, "flag needs an argument"},
		{[]string{"audit", "list", "--limit", "0"}, "--limit 0"},
		{[]string{"login", "--user", "admin"}, "--server is required"},
		{[]string{"gateways", "token"}, "--name is required"},
		{[]string{"resources", "add", "--type", "tcp", "--name", "web"}, "--gateway or --gateway-group is required"},
		{[]string{"resources", "add", "--type", "tcp", "--name", "web", "--gateway", "gw1", "--gateway-group", "dc1"}, "give one of the two"},
		{[]string{"whoami", "extra"}, `takes no arguments, got "extra"`},
		{[]string{"users", "add"}, "want one argument: NAME"},
		{[]string{"users", "add", "a", "b"}, "want one argument: NAME"},
		{[]string{"accounts", "show", "no-slash"}, "want RESOURCE/ACCOUNT"},
		{[]string{"ssh"}, "want RESOURCE/ACCOUNT"},
		{append([]string{"server", "--log-level", "loud"}, safe...), `--log-level "loud"`},
		{append([]string{"dev", "--log-format", "xml"}, safe...), `--log-format "xml"`},
		{[]string{"gateway", "--data-dir", t.TempDir(), "--log-level", "verbose"}, `--log-level "verbose"`},
		{[]string{"connect", "db/ops", "--log-level", "trace"}, `--log-level "trace"`},
		{[]string{"ssh", "db/ops", "--log-format", "yaml"}, `--log-format "yaml"`},
		{append([]string{"server", "--master-key", "c2VjcmV0"}, safe...), "set PAMD_MASTER_KEY in the environment"},
		{append([]string{"server", "--admin-password", "hunter2hunter2"}, safe...), "set PAMD_ADMIN_PASSWORD in the environment"},
		{[]string{"gateway", "--data-dir", t.TempDir(), "--proxy", "http://gw:hunter2@proxy.corp:3128"}, "--proxy: a password on the command line shows in ps: set PAMD_GATEWAY_PROXY"},
		{[]string{"gateway", "--data-dir", t.TempDir(), "--proxy", "socks5://proxy.corp:1080"}, "only http:// proxies"},
	}
	for _, tt := range tests {
		code, _, errOut := run(t, "", tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("pamd %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

// TestBadOutputRefusedBeforeAnyCall: every command with -o refuses a bad
// value as bad usage before it calls the server. The saved login points
// at a listener that counts connections; a command that does call it
// (the control) shows the test would see one.
func TestBadOutputRefusedBeforeAnyCall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	dir := t.TempDir()
	l := &apiclient.Login{Server: "https://" + ln.Addr().String(), Fingerprint: "SHA256:" + strings.Repeat("00", 32), User: "admin", Token: "t", ExpiresAt: time.Now().Add(time.Hour)}
	if err := l.Save(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAMD_CONFIG_DIR", filepath.Join(dir, "not-this-one")) // --config-dir wins

	required := map[string][]string{
		"pamd gateways token":     {"--name", "dc1"},
		"pamd gateways set":       {"--group", "dc1"},
		"pamd resources add":      {"--type", "tcp", "--name", "web", "--gateway", "dc1"},
		"pamd ca rotate start":    {"--type", "server"},
		"pamd ca rotate complete": {"--type", "server"},
		"pamd ca rotate rollback": {"--type", "server"},
	}
	checked := 0
	a := newApp("test", Streams{}) // not set up: no help commands (urfave/cli's is one shared value)
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := path + " " + c.Name
			walk(name, c.Subcommands)
			if !hasFlag(c, "output") {
				continue
			}
			args := append(strings.Fields(strings.TrimPrefix(name, "pamd ")), required[name]...)
			for _, w := range strings.Fields(c.ArgsUsage) {
				switch {
				case strings.HasPrefix(w, "["):
				case strings.Contains(w, "/"):
					args = append(args, "res/acct")
				default:
					args = append(args, "x")
				}
			}
			for _, o := range []string{"-o", "--output"} {
				full := append([]string{"--config-dir", dir}, append(append([]string{}, args...), o, "yaml")...)
				code, _, errOut := run(t, "", full...)
				if code != 2 || !strings.Contains(errOut, `-o "yaml": want table or json`) {
					t.Errorf("pamd %s: exit %d, stderr %q; want 2 and the -o error", strings.Join(full, " "), code, errOut)
				}
			}
			checked++
		}
	}
	walk("pamd", a.cli.Commands)
	if checked < 20 {
		t.Fatalf("only %d commands have -o", checked)
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d connections to the server for a bad -o", n)
	}
	if code, _, errOut := run(t, "", "--config-dir", dir, "ls", "-o", "json"); code != 1 || dials.Load() == 0 {
		t.Fatalf("control: pamd ls -o json exited %d (%q) after %d connections; want 1 after one or more", code, errOut, dials.Load())
	}
}

// TestHelpListsSecretEnvVars: every setting that is a secret or names a
// file holding one shows its environment variable in --help.
func TestHelpListsSecretEnvVars(t *testing.T) {
	for cmd, flags := range map[string]map[string]string{
		"server":  {"master-key": "PAMD_MASTER_KEY", "master-key-file": "PAMD_MASTER_KEY_FILE", "admin-password": "PAMD_ADMIN_PASSWORD", "tls-key": "PAMD_TLS_KEY"},
		"dev":     {"admin-password": "PAMD_ADMIN_PASSWORD"},
		"gateway": {"token": "PAMD_GATEWAY_TOKEN", "proxy": "PAMD_GATEWAY_PROXY"},
	} {
		code, out, errOut := run(t, "", cmd, "--help")
		if code != 0 {
			t.Fatalf("pamd %s --help: exit %d: %s", cmd, code, errOut)
		}
		for flag, env := range flags {
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "--"+flag+" ") {
					found = strings.Contains(line, "[$"+env+"]")
				}
			}
			if !found {
				t.Errorf("pamd %s --help: no --%s line naming $%s:\n%s", cmd, flag, env, out)
			}
		}
	}
}

// TestHelpShowsNoSecretValue: the help of a flag set from the environment
// shows the variable, never its value.
func TestHelpShowsNoSecretValue(t *testing.T) {
	t.Setenv("PAMD_MASTER_KEY", "master-secret-value")
	t.Setenv("PAMD_ADMIN_PASSWORD", "admin-secret-value")
	t.Setenv("PAMD_GATEWAY_TOKEN", "token-secret-value")
	t.Setenv("PAMD_GATEWAY_PROXY", "http://gw:proxy-secret-value@proxy.corp:3128")
	for _, cmd := range []string{"server", "dev", "gateway"} {
		_, out, _ := run(t, "", cmd, "--help")
		if strings.Contains(out, "secret-value") {
			t.Fatalf("pamd %s --help shows a secret:\n%s", cmd, out)
		}
	}
}

// TestEveryRoleHasLogFlags: --log-level and --log-format on each role.
func TestEveryRoleHasLogFlags(t *testing.T) {
	a := newApp("test", Streams{})
	for _, role := range []string{"server", "gateway", "dev", "connect", "ssh"} {
		c := a.cli.Command(role)
		if c == nil {
			t.Fatalf("no %s command", role)
		}
		for _, f := range []string{"log-level", "log-format"} {
			if !hasFlag(c, f) {
				t.Errorf("pamd %s has no --%s", role, f)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", "--version")
	if code != 0 || !strings.Contains(out, "pamd version test") {
		t.Fatalf("exit %d, %q", code, out)
	}
}

// TestStdinFileFromReader: pamd ssh gets a file for standard input even
// when the CLI was given a plain reader.
func TestStdinFileFromReader(t *testing.T) {
	a := newApp("test", Streams{In: strings.NewReader("typed\n")})
	f, err := a.stdinFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 16)
	n, _ := f.Read(b)
	if string(b[:n]) != "typed\n" {
		t.Fatalf("read %q through the pipe", b[:n])
	}
}
