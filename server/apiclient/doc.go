// Package apiclient is the CLI's side of the HTTP API: a client that trusts
// the server by its pinned CA fingerprint (or the system roots when none is
// pinned), and the login file it keeps in the user's config dir (mode 0600).
//
// Files: client.go (Client, Do, errors), login.go (the saved login).
package apiclient
