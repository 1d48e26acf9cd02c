package store

import bolt "go.etcd.io/bbolt"

type boltTx = bolt.Tx

// rewriteAuditEvent is Tx.RewriteAuditEvent (audit_failpoints.go) for the
// unit tests, which run without the failpoints tag: it replaces one stored
// event without re-linking the chain.
func rewriteAuditEvent(t *Tx, seq uint64, edit func(*AuditEvent)) error {
	ev, err := get[AuditEvent](t, bucketAudit, seqKey(seq))
	if err != nil {
		return err
	}
	edit(ev)
	return put(t, bucketAudit, seqKey(seq), ev)
}
