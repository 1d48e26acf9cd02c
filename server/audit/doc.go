// Package audit appends events to the store's hash-chained audit log: in
// the caller's transaction when the event belongs with a state change
// (Append), or in a transaction of its own (Trail.Event). It also makes a
// request's fields fit for the log (Host, Name).
//
// Files: audit.go.
package audit
