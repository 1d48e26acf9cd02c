package cli

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestChooseClient(t *testing.T) {
	cmds := [][]string{
		{"sqlcmd", "-S", "127.0.0.1,{port}"},
		{"tsql", "-H", "127.0.0.1", "-p", "{port}", "-P", ""},
	}
	fill := strings.NewReplacer("{port}", "4321").Replace
	all := func(string) bool { return true }
	on := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			if slices.Contains(names, n) {
				return "/usr/bin/" + n, nil
			}
			return "", errors.New("not found")
		}
	}
	for _, c := range []struct {
		name, named string
		path        []string
		want        []string
		err         string
	}{
		{name: "first on PATH", path: []string{"sqlcmd", "tsql"}, want: []string{"sqlcmd", "-S", "127.0.0.1,4321"}},
		{name: "skips what is missing", path: []string{"tsql"}, want: []string{"tsql", "-H", "127.0.0.1", "-p", "4321", "-P", ""}},
		{name: "named", named: "tsql", path: []string{"sqlcmd", "tsql"}, want: []string{"tsql", "-H", "127.0.0.1", "-p", "4321", "-P", ""}},
		{name: "named, missing", named: "tsql", path: []string{"sqlcmd"}, err: "tsql is not on PATH"},
		{name: "none", err: "none of sqlcmd, tsql is on PATH"},
	} {
		got, err := chooseClient(cmds, c.named, fill, all, on(c.path...))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	// A command naming a file that could not be written is not run.
	ssh := [][]string{{"ssh", "-o", "UserKnownHostsFile={known_hosts}"}}
	if _, err := chooseClient(ssh, "", fill, func(string) bool { return false }, on("ssh")); err == nil {
		t.Error("a command whose known_hosts file is missing was chosen")
	}
}

func TestPickArgs(t *testing.T) {
	cmds := [][]string{{"ssh", "-p", "{port}"}}
	if named, extra := pickArgs([]string{"ssh", "-v"}, cmds); named != "ssh" || !slices.Equal(extra, []string{"-v"}) {
		t.Errorf("ssh -v: %q %q", named, extra)
	}
	if named, extra := pickArgs([]string{"uptime"}, cmds); named != "" || !slices.Equal(extra, []string{"uptime"}) {
		t.Errorf("uptime: %q %q", named, extra)
	}
	if named, extra := pickArgs([]string{"--", "ssh", "x"}, cmds); named != "" || !slices.Equal(extra, []string{"ssh", "x"}) {
		t.Errorf("-- ssh x: %q %q", named, extra)
	}
	if named, extra := pickArgs([]string{"ssh", "--", "-x"}, cmds); named != "ssh" || !slices.Equal(extra, []string{"-x"}) {
		t.Errorf("ssh -- -x: %q %q", named, extra)
	}
}
