package cli

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/kind/mongokind"
	"github.com/pamd/pamd/server/kind/mssqlkind"
	"github.com/pamd/pamd/server/kind/sshkind"
	"github.com/pamd/pamd/server/kind/tcpkind"
)

// The options resources add and set send come from the kinds' fields and
// the flags: on add each option of the type from its flag or the flag's
// default, a CA certificate from its file; on set only the flags given.
func TestOptionsFromKindFields(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("PEM"), 0o600)
	schemas := map[string]api.Kind{}
	for _, k := range []api.Kind{sshkind.New(nil).Schema(), mongokind.New(nil).Schema(), mssqlkind.New(nil).Schema(), tcpkind.New().Schema()} {
		schemas[k.Name] = k
	}
	options := func(sub string, onlySet bool, fields []api.Field, args ...string) map[string]string {
		t.Helper()
		var cmd *cli.Command
		for _, c := range newApp("test", Streams{}).resourcesCommand().Subcommands {
			if c.Name == sub {
				cmd = c
			}
		}
		opts := map[string]string{}
		cmd.Before, cmd.Action = nil, func(c *cli.Context) error { return optionsFromFlags(c, fields, opts, onlySet) }
		app := &cli.App{Commands: []*cli.Command{cmd}}
		if err := app.Run(append([]string{"pamd", sub}, args...)); err != nil {
			t.Fatal(err)
		}
		return opts
	}
	for _, c := range []struct {
		typ  string
		args []string
		want map[string]string
	}{
		{"mongodb", []string{"--connection-string", "mongodb://db:27017", "--tls=false"},
			map[string]string{"uri": "mongodb://db:27017", "auth_database": "admin", "tls": "false", "tls_reject_unauthorized": "true"}},
		{"mongodb", []string{"--connection-string", "mongodb://db:27017", "--auth-database", "users", "--tls-ca-file", ca},
			map[string]string{"uri": "mongodb://db:27017", "auth_database": "users", "tls": "true", "tls_reject_unauthorized": "true", "tls_ca": "PEM"}},
		{"mssql", []string{"--host", "db", "--tls-reject-unauthorized=false"},
			map[string]string{"database": "", "tls": "true", "tls_reject_unauthorized": "false"}},
		{"mssql", []string{"--host", "db", "--database", "app"},
			map[string]string{"database": "app", "tls": "true", "tls_reject_unauthorized": "true"}},
		{"mongodb", []string{"--connection-string", "mongodb://db:27017", "--option", "auth_database=ops", "--option", "tls=false"},
			map[string]string{"uri": "mongodb://db:27017", "auth_database": "ops", "tls": "false", "tls_reject_unauthorized": "true"}},
		{"ssh", []string{"--host", "h"}, map[string]string{}},
		{"tcp", []string{"--host", "h", "--port", "7"}, map[string]string{}},
	} {
		if got := options("add", false, schemas[c.typ].ResourceFields, c.args...); !maps.Equal(got, c.want) {
			t.Errorf("add --type %s %q: options %v, want %v", c.typ, c.args, got, c.want)
		}
	}
	var all []api.Field
	for _, k := range schemas {
		all = append(all, k.ResourceFields...)
	}
	for _, c := range []struct {
		args []string
		want map[string]string
	}{
		{[]string{"--host", "h"}, map[string]string{}},
		{[]string{"--tls=false", "--database", "app"}, map[string]string{"tls": "false", "database": "app"}},
		{[]string{"--connection-string", "mongodb://x", "--auth-database", "a", "--tls-ca-file", ca, "--tls-reject-unauthorized"},
			map[string]string{"uri": "mongodb://x", "auth_database": "a", "tls_ca": "PEM", "tls_reject_unauthorized": "true"}},
	} {
		if got := options("set", true, all, c.args...); !maps.Equal(got, c.want) {
			t.Errorf("set %q: options %v, want %v", c.args, got, c.want)
		}
	}
}

// --option takes only a setting the type's schema names, and a bool as
// true or false.
func TestOptionFlagIsCheckedAgainstTheSchema(t *testing.T) {
	fields := mongokind.New(nil).Schema().ResourceFields
	for _, args := range [][]string{{"--option", "nonsense=1"}, {"--option", "auth_database"}, {"--option", "tls=maybe"}} {
		var cmd *cli.Command
		for _, c := range newApp("test", Streams{}).resourcesCommand().Subcommands {
			if c.Name == "add" {
				cmd = c
			}
		}
		cmd.Before, cmd.Action = nil, func(c *cli.Context) error { return optionsFromFlags(c, fields, map[string]string{}, false) }
		err := (&cli.App{Commands: []*cli.Command{cmd}}).Run(append([]string{"pamd", "add"}, args...))
		if err == nil || !strings.Contains(err.Error(), "--option") {
			t.Errorf("%q: %v, want a usage error naming --option", args, err)
		}
	}
}
