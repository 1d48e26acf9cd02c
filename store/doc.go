// Package store owns pamd's state: one bbolt file in which every value is
// sealed and no name is readable.
//
// # Sealing
//
// A random 256-bit data key encrypts every value with AES-256-GCM; the
// associated data is the bucket name and the key, so a sealed value cannot be
// moved to another place in the file and still open. The data key itself is
// stored wrapped (AES-256-GCM) by the master key, which lives outside the file
// (--master-key-file or PAMD_MASTER_KEY). Opening with the wrong master key
// fails with ErrWrongMasterKey before anything is written.
//
// # Indexes
//
// Entities are keyed by random IDs. Name lookups go through the index bucket,
// whose keys are HMAC-SHA256 of kind and name under a key derived from the
// data key: the file holds no user, resource or account name in the clear.
//
// # Audit chain
//
// Audit events are appended under increasing sequence numbers. Each carries
// the SHA-256 of the one before; the newest hash is also kept in the meta
// bucket, so VerifyAudit finds an edited, removed or reordered event, and a
// cut-off tail.
//
// # Recordings
//
// A session's records are keyed by the session and a number the store
// gives each in the order they come (AppendRecording), whichever gateway
// sent them; a second bucket remembers, under the index HMAC, who numbered
// each (a gateway's enrollment) and its number, so a record sent again is
// stored once.
// Stores written before (schema 1) keep the gateway's numbers as keys:
// ordered per session too, and followed by the new ones. Opening one marks
// it schema 2, which an older pamd refuses (it would overwrite the
// server-numbered records).
//
// # Access
//
// Callers work in closures: View and Update hand them a *Tx with typed
// methods; the bbolt transaction never leaves this package, so the backend can
// change behind the same methods.
//
// Files: store.go (Open, master key, transactions), seal.go (AEAD and index
// HMAC), records.go (entity types, an account's Rotation with its pending
// credential), requests.go (access requests and their reviews), tx.go
// (typed methods), sso.go (the SSO settings, users by provider subject), audit.go (the hash chain), check.go (Check: every value
// opens, for tests and storetest), audit_failpoints.go (RewriteAuditEvent,
// for tests that edit history; only in builds with -tags failpoints), migrate.go (schema
// version and migrations), ops.go (what operators do to the file: backups,
// re-keying, the audit head; a commit the disk refuses, ErrCannotWrite),
// free_unix.go and free_other.go (the space left on the data file's disk).
//
// Sub-packages: storetest (stores for tests, checked when each test ends).
package store
