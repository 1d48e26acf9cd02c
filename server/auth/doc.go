// Package auth authenticates pamd's users: argon2id passwords, TOTP codes
// that work once, logins throttled per source and name with the password
// hashes capped and run outside any store transaction, API tokens and
// their revocation, the console's cookie and CSRF tokens, the caller of a
// request and the level a route asks of it, and the first start's admin.
//
// Files:
//   - auth.go: password hashing, random secrets, token hashes, TOTP, token
//     revocation.
//   - bootstrap.go: the built-in roles and the first admin, whose generated
//     password waits in a one-time file.
//   - caller.go: Caller, route levels, Authorize (bearer token or cookie
//     with CSRF), the console cookie's name and CSRF tokens.
//   - login.go: Login, IssueToken and IssueSSOToken (whose token carries
//     the SSO provider's MFA time); an SSO user has no password login.
//   - service.go: Service (what authentication holds), re-asking a
//     caller's password, MFA code throttling at access time, SetPassword.
//   - throttle.go: backoff of failures per key and the cap on hashes.
package auth
