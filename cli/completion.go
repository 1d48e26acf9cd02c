package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/pamd/pamd/server/api"
)

// completionFlag is what the shell scripts append to the words typed so
// far to ask pamd for the next one: urfave/cli's, which then runs the
// BashComplete of the command named (setCompletions).
const completionFlag = "--generate-bash-completion"

// completing reports whether args ask for completions rather than a run.
func completing(args []string) bool {
	return len(args) > 1 && args[len(args)-1] == completionFlag
}

func (a *app) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script: source <(pamd completion bash)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Commands, subcommands and flags complete, and RESOURCE/ACCOUNT and RESOURCE arguments\n" +
			"complete from your catalog (pamd ls) when you are logged in.\n\n" +
			"   bash: source <(pamd completion bash)     (or save it as /etc/bash_completion.d/pamd)\n" +
			"   zsh:  source <(pamd completion zsh)      (after compinit)\n" +
			"   fish: pamd completion fish | source      (or save it as ~/.config/fish/completions/pamd.fish)",
		Action: a.completion,
	}
}

func (a *app) completion(c *cli.Context) error {
	shell, err := oneArg(c, "bash, zsh or fish")
	if err != nil {
		return err
	}
	script, ok := completionScripts[shell]
	if !ok {
		return usageError("pamd completion %q: want bash, zsh or fish", shell)
	}
	_, err = io.WriteString(a.stdout, script)
	return err
}

// setCompletions gives the app's commands their completion (the words
// typed are a.args: urfave/cli's own reads os.Args, and offers the help
// command everywhere).
func (a *app) setCompletions(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		c.BashComplete = a.completeArg(c, catalogWord(c, parent))
		a.setCompletions(c.Subcommands, c.Name)
	}
}

// catalogWord says how a catalog entry completes c's argument, or nil when
// it does not: RESOURCE/ACCOUNT (connect, ssh) and an existing account's
// RESOURCE/NAME are targets, RESOURCE and a resource's NAME resources. A
// command that creates what it names (add) gets none.
func catalogWord(c *cli.Command, parent string) func(api.CatalogEntry) string {
	switch {
	case c.Name == "add":
		return nil
	case strings.HasPrefix(c.ArgsUsage, "RESOURCE/"):
		return func(e api.CatalogEntry) string { return e.Resource + "/" + e.Account }
	case c.ArgsUsage == "RESOURCE" || (parent == "resources" && c.ArgsUsage == "NAME"):
		return func(e api.CatalogEntry) string { return e.Resource }
	}
	return nil
}

// completeArg completes what follows the words typed for cmd (nil: the
// app): its flags after a word starting with "-", nothing after a flag
// that takes a value (the shell then offers file names), else its
// subcommands, else its first argument from the catalog when word says
// how.
func (a *app) completeArg(cmd *cli.Command, word func(api.CatalogEntry) string) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		flags, cmds := a.cli.Flags, a.cli.Commands
		if cmd != nil {
			flags, cmds = cmd.Flags, cmd.Subcommands
		}
		var subs []string // urfave/cli gives every command a help subcommand: not offered
		for _, s := range cmds {
			if !s.Hidden && s.Name != "help" {
				subs = append(subs, s.Name)
			}
		}
		last := ""
		if n := len(a.args); n >= 3 {
			last = a.args[n-2] // the word before completionFlag
		}
		switch {
		case strings.HasPrefix(last, "-") && takesValue(flags, last):
		case strings.HasPrefix(last, "-"):
			printFlags(a.stdout, flags, strings.TrimLeft(last, "-"))
		case len(subs) > 0:
			for _, s := range subs {
				fmt.Fprintln(a.stdout, s)
			}
		case word != nil && c.NArg() == 0:
			for _, w := range a.catalogWords(c, word) {
				fmt.Fprintln(a.stdout, w)
			}
		}
	}
}

// catalogWords asks the server for the catalog of the saved login, briefly;
// without a login, or with an error, there is quietly nothing.
func (a *app) catalogWords(c *cli.Context, word func(api.CatalogEntry) string) []string {
	cl, err := client(c)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Context, 3*time.Second)
	defer cancel()
	entries, err := cl.Catalog(ctx)
	if err != nil {
		return nil
	}
	var words []string
	for _, e := range entries {
		words = append(words, word(e))
	}
	slices.Sort(words)
	return slices.Compact(words)
}

// printFlags prints the --names of flags that start with prefix.
func printFlags(w io.Writer, flags []cli.Flag, prefix string) {
	for _, f := range flags {
		for _, name := range f.Names() {
			if len(name) > 1 && strings.HasPrefix(name, prefix) {
				fmt.Fprintln(w, "--"+name)
			}
		}
	}
}

// completionScripts ask pamd itself: the words before the cursor, the
// current one too when it starts with "-", then completionFlag. The shell
// keeps what starts with the current word.
var completionScripts = map[string]string{
	"bash": `# pamd completion for bash: source <(pamd completion bash),
# or save it as /etc/bash_completion.d/pamd.
_pamd() {
  local cur words cword
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref -n =: cur words cword
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local req=("${words[@]:0:cword}")
  [[ $cur == -* ]] && req+=("$cur")
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${req[@]}" ` + completionFlag + ` 2>/dev/null)" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _pamd pamd
`,
	"zsh": `#compdef pamd
# pamd completion for zsh: source <(pamd completion zsh) after compinit,
# or save it as _pamd in a directory of your $fpath.
_pamd() {
  local cur=${words[CURRENT]}
  local -a req opts
  req=("${(@)words[1,CURRENT-1]}")
  [[ $cur == -* ]] && req+=("$cur")
  opts=("${(@f)$("${(@)req}" ` + completionFlag + ` 2>/dev/null)}")
  if [[ -n ${opts[1]} ]]; then
    compadd -a opts
  else
    _files
  fi
}
compdef _pamd pamd
`,
	"fish": `# pamd completion for fish: pamd completion fish | source,
# or save it as ~/.config/fish/completions/pamd.fish.
function __pamd_complete
    set -l req (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        set req $req $cur
    end
    $req ` + completionFlag + ` 2>/dev/null
end
complete -c pamd -f -a '(__pamd_complete)'
`,
}
