// Package sshproxy is the gateway's handler for ssh resources. It is both
// ends of an SSH connection: an SSH server toward the user's client, with a
// host key pamd keeps per resource, and an SSH client toward the target,
// which logs in with the injected credential (password, key, or a
// certificate made for this connection) after checking the pinned host key.
//
// Sessions, exec, subsystems (SFTP) and direct-tcpip channels (ssh -L) are
// relayed with their requests, so exit status, window changes and signals
// pass through. When the target cannot be used (unreachable, host key
// mismatch, credentials refused) the user's client is told in an SSH banner
// before its login is refused. When the session ends, every shell is told
// why before it is cut.
//
// What happens is reported as tunnel.Record values: every session
// channel's input, output and stderr with their timing (with a terminal or
// without), resizes, commands with exit status, and SFTP and SCP file
// operations (see protocol/sftp), also of an exec'd sftp-server. A trusted
// file transfer (the sftp subsystem, or an exec of nothing but scp,
// sftp-server or rsync --server) is recorded as its file operations rather
// than its bytes, and falls back to bytes where its stream does not parse.
//
// Toward targets, RSA host keys and RSA account keys are used with SHA-2
// signatures only (RFC 8332), and keyboard-interactive logins answer only
// password prompts.
//
// Files: sshproxy.go (Handle, target login, client-facing server),
// channel.go (channel relay and recording), files.go (SFTP and SCP
// trackers, trusted transfers), probe.go (host key probe), rotate.go
// (rotation: sudo chpasswd, passwd on a terminal, authorized_keys);
// target_test.go is an in-process target for the tests.
package sshproxy
