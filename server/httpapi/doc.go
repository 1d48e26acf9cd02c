// Package httpapi answers pamd's HTTP API (/api/v1): the routes with the
// level each asks of its caller (see auth), JSON errors, and the handlers,
// which call the server's parts (auth, sessions, hub, kinds, rotation, ca)
// and record each change in the audit log in the change's transaction.
//
// Files:
//   - api.go: API, routing, the authorisation wrapper and access log, JSON
//     in and out, the error for a disk that refuses writes.
//   - ops.go: /healthz, /readyz, /metrics, the audit head, hot backups.
//   - identity.go: logins, passwords, MFA, users, tokens, roles, gateway
//     enrollment.
//   - lifecycle.go: changing a user's roles, resetting their password and
//     deleting them; editing roles; ending the live sessions a change no
//     longer grants.
//   - gateways.go: listing, revoking and removing gateways (moving their
//     resources to another).
//   - resources.go: resources, accounts, the catalog, resource tests, the kinds' schemas.
//   - update.go: editing resources and accounts; rotating one now.
//   - sessions.go: opening, listing and ending access sessions; the audit log.
//   - records.go: session records with their kinds' summaries, asciicast export.
//   - targets.go: pinning SSH host keys and the SSH user CA endpoints.
//   - pki.go: the CAs' certificates and the db-client CRL (/api/v1/ca/…,
//     and /pki/ without a login: the CRL distribution point).
//   - carotation.go: rotating the CAs (start, complete, rollback, status),
//     and the pin headers of every answer a logged-in CLI follows.
//   - ui.go: the console's cookie login and session, TOTP QR codes.
//   - webterm.go: a session's web terminal, for its own user (webterm serves it).
//   - requests.go: just-in-time access requests (/api/v1/requests), the
//     grant a session takes from an approved one, roles' request fields.
//   - sso.go: the SSO settings, the console's and the CLI's SSO logins, users
//     sync, a provider's MFA in place of a TOTP code.
package httpapi
