package store

import (
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

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

// PutRecordingAsBefore stores a record as pamd did before the server
// numbered them: under the gateway's own sequence number.
func PutRecordingAsBefore(t *Tx, sessionID string, gatewaySeq uint64, record json.RawMessage) error {
	return put(t, bucketRecordings, recordingKey(sessionID, gatewaySeq), &record)
}
