// Package sshkind is the ssh resource type on the server: the target's host
// key is pinned when the resource is made (the gateway fetches it with a
// probe) and checked by the gateway on every connection. pamd shows
// clients a host key of its own per resource, and each resource has its
// own user CA, whose key never leaves the server.
//
// Options (stored in the resource's options):
//
//	host_key  the target's pinned host key (authorized_keys form)
//
// Files: setup.go, sshkind.go.
package sshkind
