// Package apiclient is the CLI's side of the HTTP API: a client that trusts
// the server by its pinned CA fingerprint (or the system roots when none is
// pinned), one typed method per route the CLI calls, and the login file it
// keeps in the user's config dir (mode 0600).
//
// Files: client.go (Client, Do, errors), auth.go (info, login, logout,
// whoami, password, MFA), admin.go (users, roles, gateways), resources.go
// (resources, accounts, SSH CA), sessions.go (catalog, sessions, records,
// audit), backup.go (a hot copy of the data file), login.go (the saved
// login, ConfigDir, following a CA rotation's pins: LearnPins), sso.go (SSO settings, the CLI's SSO login, users
// sync), requests.go (access requests).
package apiclient
