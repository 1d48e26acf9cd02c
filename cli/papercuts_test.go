package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/apiclient"
	"github.com/pamd/pamd/server/kind"
	"github.com/pamd/pamd/server/kind/mongokind"
	"github.com/pamd/pamd/server/kind/mssqlkind"
	"github.com/pamd/pamd/server/kind/sshkind"
	"github.com/pamd/pamd/server/servertest"
	"github.com/pamd/pamd/store"
)

// login and passwd read passwords from standard input with the same flag,
// --password-stdin, and take --stdin (passwd's old spelling) on both.
func TestPasswordStdinOneSpelling(t *testing.T) {
	t.Setenv("PAMD_CONFIG_DIR", t.TempDir()) // not logged in
	fp := "--ca-fingerprint=SHA256:" + strings.Repeat("00", 32)
	for _, args := range [][]string{
		{"passwd", "--password-stdin"},
		{"passwd", "--stdin"},
		{"login", "--server", "https://127.0.0.1:1", "--user", "u", fp, "--password-stdin"},
		{"login", "--server", "https://127.0.0.1:1", "--user", "u", fp, "--stdin"},
	} {
		code, _, errOut := run(t, "old-password\nnew-password\n", args...)
		// The password was read; what fails is what comes next (no login
		// saved, no server there).
		if code != 1 || strings.Contains(errOut, "not a terminal") || strings.Contains(errOut, "flag provided") {
			t.Errorf("pamd %s: exit %d, %q; want 1 after reading the password", strings.Join(args, " "), code, errOut)
		}
	}
}

// Without a terminal to prompt on, the error names the command's own flag.
func TestPromptNamesTheFlag(t *testing.T) {
	t.Setenv("PAMD_CONFIG_DIR", t.TempDir())
	fp := "--ca-fingerprint=SHA256:" + strings.Repeat("00", 32)
	for _, args := range [][]string{
		{"passwd"},
		{"login", "--server", "https://127.0.0.1:1", "--user", "u", fp},
		{"mfa", "enroll"},
	} {
		code, _, errOut := run(t, "", args...)
		if code != 1 || !strings.Contains(errOut, "standard input is not a terminal (use --password-stdin)") {
			t.Errorf("pamd %s: exit %d, %q; want the flag named", strings.Join(args, " "), code, errOut)
		}
	}
}

// fakeEnv gives the kinds' grants the keys they ask for.
type fakeEnv struct {
	kind.Env
	key ssh.Signer
}

func (e fakeEnv) ResourceKey(string, string) (ssh.Signer, string, error) { return e.key, "", nil }
func (e fakeEnv) ResourceCA() string                                     { return "-----BEGIN CERTIFICATE-----\n" }

// pamd connect prints the kinds' commands as lines to paste, with no
// prefix; its own messages (and the kinds' notes) start with "pamd: ".
func TestConnectPrintsCommandsToPaste(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	env := fakeEnv{key: signer}
	res, acct := &store.Resource{ID: "r1", Name: "box"}, &store.Account{Name: "ops", Username: "deploy"}
	for _, tt := range []struct {
		kind     kind.Kind
		commands []string
	}{
		{sshkind.New(env), []string{"ssh -p 4321 ", "scp -P 4321 ", "sftp -P 4321 "}},
		{mongokind.New(env), []string{`mongosh "mongodb://127.0.0.1:4321/`}},
		{mssqlkind.New(env), []string{"sqlcmd -S 127.0.0.1,4321", "tsql -H 127.0.0.1 -p 4321 "}},
	} {
		grant := api.SessionGrant{Session: api.Session{ID: "s1", Resource: "box", Account: "ops", ExpiresAt: time.Now().Add(time.Hour)}}
		if err := tt.kind.Grant(res, acct, &grant); err != nil {
			t.Fatal(err)
		}
		out := connectOutput(t, grant)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for _, want := range tt.commands {
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, want)
			}
			if !found {
				t.Errorf("no line starts with %q:\n%s", want, out)
			}
		}
		for _, l := range lines {
			pasted := false
			for _, c := range tt.commands {
				pasted = pasted || strings.HasPrefix(l, c)
			}
			if !pasted && !strings.HasPrefix(l, "pamd: ") {
				t.Errorf("message without the pamd: prefix: %q", l)
			}
		}
	}
}

// connectOutput is what pamd connect prints for grant once it listens on
// port 4321.
func connectOutput(t *testing.T, grant api.SessionGrant) string {
	t.Helper()
	var out strings.Builder
	a := newApp("test", Streams{Out: &out})
	app := &cli.App{
		Flags: []cli.Flag{&cli.StringFlag{Name: "config-dir", Value: t.TempDir()}, outputFlag()},
		Action: func(c *cli.Context) error {
			a.connectReady(c, grant, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4321})
			return nil
		},
	}
	if err := app.Run([]string{"pamd"}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// loggedInDir saves an admin login to e in a new config dir.
func loggedInDir(t *testing.T, e *servertest.Env) string {
	t.Helper()
	dir := t.TempDir()
	l := &apiclient.Login{Server: e.URL, Fingerprint: e.Fingerprint, User: "admin", Token: e.Client.Token, ExpiresAt: time.Now().Add(time.Hour)}
	if err := l.Save(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAMD_CONFIG_DIR", dir)
	return dir
}

// What a user is told of a name that does not exist names no part of the
// server (no "store:"), and access denied points at pamd ls.
func TestNoInternalNamesInErrors(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "web")
	loggedInDir(t, e)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"resources", "show", "nope"}, `resource "nope" not found`},
		{[]string{"accounts", "show", "nope/any"}, `resource "nope" not found`},
		{[]string{"users", "reset-password", "nobody"}, `user "nobody" not found`},
		{[]string{"connect", "nope/any"}, "see pamd ls for what you may access"},
		{[]string{"resources", "add", "--type", "tcp", "--name", "web", "--gateway", servertest.GatewayName, "--host", "127.0.0.1", "--port", "1"}, `resource "web" already exists`},
	} {
		code, _, errOut := run(t, "", tt.args...)
		if code != 1 || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "store") {
			t.Errorf("pamd %s: exit %d, %q; want 1 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}

// A session with no records says so, on standard error: standard output
// (what a script keeps) stays empty; -o json is an empty list.
func TestSessionsLogsSaysWhenThereAreNone(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "web")
	loggedInDir(t, e)
	g := e.Open(t, e.Client, api.CreateSessionRequest{Resource: "web", Account: "any"})
	code, out, errOut := run(t, "", "sessions", "logs", g.Session.ID)
	want := "pamd: session " + g.Session.ID + " has no records (nothing was recorded, or the gateway has not uploaded them yet)\n"
	if code != 0 || out != "" || errOut != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0, nothing, %q", code, out, errOut, want)
	}
	if code, out, _ := run(t, "", "sessions", "logs", g.Session.ID, "-o", "json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("-o json: exit %d, %q; want []", code, out)
	}
}

// Help shows the defaults flags have: no "(default: 0)" for a flag whose
// zero means something else, and no usage that states a default of its own
// next to urfave/cli's.
func TestHelpShowsRealDefaults(t *testing.T) {
	a := newApp("test", Streams{})
	checked := 0
	forEachCommand(a.cli.Commands, func(c *cli.Command) {
		for _, f := range c.Flags {
			line := f.String()
			if strings.Contains(line, "(default: 0)") || strings.Count(line, "default") > 1 {
				t.Errorf("pamd %s: %q", c.FullName(), line)
			}
			checked++
		}
	})
	if checked < 100 {
		t.Fatalf("only %d flags", checked)
	}
	for _, tt := range []struct{ cmd, flag, want string }{
		{"connect", "--port", "(default: a free one)"},
		{"resources add", "--port", "(default: 22 for ssh, 1433 for mssql)"},
		{"resources add", "--password-length", "(default: 32)"},
		{"resources set", "--password-length", "(default: unchanged)"},
		{"resources set", "--tls ", "(default: unchanged)"},
		{"accounts set", "--require-mfa", "(default: unchanged)"},
	} {
		_, out, _ := run(t, "", append(strings.Fields(tt.cmd), "--help")...)
		found := false
		for _, l := range strings.Split(out, "\n") {
			found = found || strings.HasPrefix(strings.TrimSpace(l), tt.flag) && strings.Contains(l, tt.want)
		}
		if !found {
			t.Errorf("pamd %s --help: no %s line with %q:\n%s", tt.cmd, tt.flag, tt.want, out)
		}
	}
}
