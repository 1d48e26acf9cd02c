// Package rotation rotates account credentials through the gateway that
// reaches the target, so that an account never ends without a working
// credential: the new one is sealed first, the gateway changes and
// verifies it, and the server promotes it only then (see rotation.go).
// It depends on a small interface of the gateway hub, not on the server.
//
// Files:
//   - rotation.go: Rotator, the state machine, asking the gateway, settling
//     the outcome.
//   - credential.go: new passwords from a resource's policy and new SSH
//     keys; the policy options.
//   - schedule.go: intervals, when an account is due, the API's view, and
//     the loop that resumes interrupted rotations and runs scheduled ones.
package rotation
