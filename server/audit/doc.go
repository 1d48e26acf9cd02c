// Package audit appends events to the store's hash-chained audit log: in
// the caller's transaction when the event belongs with a state change
// (Append), or in a transaction of its own (Trail.Event). It also makes a
// request's fields fit for the log (Host, Name).
//
// Anchor writes the log's head (SEQ:HASH) outside the store as it moves
// (pamd server --audit-anchor FILE|syslog), so that a store restored from
// an older copy fails pamd audit verify --expect with the last head kept.
//
// Files: audit.go, anchor.go (Anchor), anchor_syslog.go and
// anchor_other.go (the system log where there is one).
package audit
