// Package sso signs users in through an OpenID Connect provider: the
// settings (stored sealed, the client secret never shown), discovery and
// the provider's keys (go-oidc refetches the JWKS when a token names a key
// it does not know, so the provider may rotate them), the authorization
// code flow with PKCE, state and nonce, the ID token's checks (issuer,
// audience, expiry, nonce), and the pamd user an identity is: created at
// its first login, its roles re-evaluated from its groups at every login.
//
// Two flows share the code: the console's, whose verifier stays on the
// server and whose browser is bound by a cookie, and the CLI's (RFC 8252),
// whose browser comes back to a loopback redirect of pamd login and whose
// PKCE verifier only the CLI holds; in both the server does the exchange,
// since only it has the client secret.
//
// Files:
//   - config.go: Service, the settings and their checks, the provider's
//     discovery (cached per issuer).
//   - flow.go: pending logins (state, nonce, PKCE), Begin and Finish, the
//     ID token's claims.
//   - device.go: the device authorization grant (RFC 8628) for machines
//     without a browser: the device code stays on the server.
//   - users.go: Login (an identity to a pamd user, the group mapping and
//     its audit), Sync, MFA freshness.
//
// Specs: OpenID Connect Core 1.0 (sections 3.1 and 2 for the ID token),
// RFC 7636 (PKCE), RFC 8252 (loopback redirects), RFC 8628 (device
// grant), RFC 8176 (amr values).
package sso
