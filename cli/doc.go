// Package cli is pamd's command line (urfave/cli/v2): every command maps
// its flags to a Config and calls the role's Run, or calls the server's
// API through server/apiclient and prints the answer. Run is the entry
// point main calls; it takes the process's streams (no command reads
// os.Stdin or writes os.Stdout itself) and returns the exit status: 0
// success, 1 failure, 2 bad usage (an unknown command or flag, a bad
// value, a bad -o, missing or extra arguments), or the status a command
// asked for. Only main calls os.Exit.
//
// Files:
//   - app.go: Streams, Run, App, the app (what every action shares), exit
//     codes and usage errors, the saved login and config dir
//   - args.go: flags after positionals (interspersed), argument and
//     required-flag checks
//   - output.go: -o table|json, tables, escaped records, JSON
//   - prompt.go: reading standard input, terminal prompts
//   - log.go: --log-level and --log-format for the roles
//   - server.go, gateway.go, dev.go: the roles (pamd server, gateway, dev);
//     server.go also holds pamd server rotate-master-key
//   - connect.go, connect_exec.go, ssh.go: the laptop side (pamd connect,
//     connect --exec running the native client, pamd ssh)
//   - login.go, mfa.go: login, logout, whoami, passwd; mfa enroll
//   - sso.go: pamd sso set|show|disable, users sync, and login --sso's
//     loopback redirect
//   - users.go, roles.go, gateways.go, resources.go, accounts.go,
//     rotation.go, catalog.go (ls), sessions.go, logs.go (sessions logs,
//     play, export), audit.go (list, verify, head), requests.go (access
//     requests: create, list, show, approve, deny, cancel, revoke): the
//     nouns of the API
//   - backup.go: pamd backup, through the API or from a stopped data dir
//   - ca.go: pamd ca export|crl|revoke|rotate: the CAs' certificates, the
//     db-client CRL, CA rotation (start, complete, rollback, status)
//   - completion.go: pamd completion bash|zsh|fish, and the completions
//     the scripts ask for: commands, flags, and targets from the catalog
package cli
