//go:build failpoints

package store

// RewriteAuditEvent replaces one stored event without re-linking the chain.
// Nothing in pamd calls it: it lets the e2e tests play an attacker who holds
// the master key and edits history, which VerifyAudit must then report.
// Only builds with -tags failpoints have it, so that a release binary holds
// no code that rewrites audit history (the unit tests have their own copy
// in export_test.go).
func (t *Tx) RewriteAuditEvent(seq uint64, edit func(*AuditEvent)) error {
	ev, err := get[AuditEvent](t, bucketAudit, seqKey(seq))
	if err != nil {
		return err
	}
	edit(ev)
	return put(t, bucketAudit, seqKey(seq), ev)
}
