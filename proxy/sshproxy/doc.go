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
// What happens is reported as tunnel.Record values: terminal output, input
// and resizes with their timing, commands with exit status, and SFTP file
// operations (see protocol/sftp).
//
// Files: sshproxy.go (Handle, target login, client-facing server),
// channel.go (channel relay and recording), probe.go (host key probe),
// rotate.go (rotation: sudo chpasswd, passwd on a terminal, authorized_keys).
package sshproxy
