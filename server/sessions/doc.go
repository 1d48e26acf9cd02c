// Package sessions holds access sessions while they are live, and the
// policy that grants them. Every relay of a live session runs under its
// context, cancelled with the end reason when the session ends (expiry,
// the user, an admin, a password change); the session's gateway hears of
// the end first, so it can tell clients in their protocol.
//
// Files: live.go (Live, Active, ending and expiry, restoring at start),
// policy.go (role grants: RESOURCE_GLOB/ACCOUNT_GLOB, maximum duration,
// reason; what roles' request patterns let a user ask for).
package sessions
