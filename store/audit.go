package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// auditHead is the newest link, kept in meta so a cut-off tail is noticed.
type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

var headKey = []byte("audit_head")

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// chainHash is SHA-256 over the event with its own Hash left empty; PrevHash
// is inside, which is what links the chain.
func chainHash(ev *AuditEvent) string {
	c := *ev
	c.Hash = ""
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (t *Tx) auditHead() (*auditHead, error) {
	h, err := get[auditHead](t, bucketMeta, headKey)
	if err == ErrNotFound {
		return &auditHead{}, nil
	}
	return h, err
}

// AppendAudit adds ev to the chain, setting its Seq, PrevHash and Hash.
func (t *Tx) AppendAudit(ev *AuditEvent) error {
	head, err := t.auditHead()
	if err != nil {
		return err
	}
	ev.Seq = head.Seq + 1
	ev.PrevHash = head.Hash
	ev.Hash = chainHash(ev)
	if err := put(t, bucketAudit, seqKey(ev.Seq), ev); err != nil {
		return err
	}
	return put(t, bucketMeta, headKey, &auditHead{Seq: ev.Seq, Hash: ev.Hash})
}

// AuditEvents calls fn for each event, oldest first, until fn returns false.
func (t *Tx) AuditEvents(fn func(*AuditEvent) bool) error {
	c := t.bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		ev, err := decode[AuditEvent](t, bucketAudit, k, v)
		if err != nil {
			return err
		}
		if !fn(ev) {
			return nil
		}
	}
	return nil
}

// AuditEventsBefore calls fn for each event older than seq (0: every
// event), newest first, until fn returns false: a page of the log reads
// only the events it shows.
func (t *Tx) AuditEventsBefore(seq uint64, fn func(*AuditEvent) bool) error {
	c := t.bucket(bucketAudit).Cursor()
	var k, v []byte
	if seq == 0 {
		k, v = c.Last()
	} else if k, v = c.Seek(seqKey(seq)); k == nil {
		k, v = c.Last() // seq is past the newest
	} else {
		k, v = c.Prev()
	}
	return walkAudit(t, k, v, c.Prev, fn)
}

// AuditEventsAfter calls fn for each event newer than seq, oldest first,
// until fn returns false.
func (t *Tx) AuditEventsAfter(seq uint64, fn func(*AuditEvent) bool) error {
	c := t.bucket(bucketAudit).Cursor()
	k, v := c.Seek(seqKey(seq + 1))
	return walkAudit(t, k, v, c.Next, fn)
}

func walkAudit(t *Tx, k, v []byte, step func() ([]byte, []byte), fn func(*AuditEvent) bool) error {
	for ; k != nil; k, v = step() {
		ev, err := decode[AuditEvent](t, bucketAudit, k, v)
		if err != nil {
			return err
		}
		if !fn(ev) {
			return nil
		}
	}
	return nil
}

// AuditBreak describes the first place the chain does not hold.
type AuditBreak struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

// VerifyAudit walks the chain. It returns the number of events checked and,
// when the chain is broken, where.
func (t *Tx) VerifyAudit() (int, *AuditBreak, error) {
	head, err := t.auditHead()
	if err != nil {
		return 0, nil, err
	}
	var (
		n    int
		prev string
		want uint64 = 1
		brk  *AuditBreak
	)
	c := t.bucket(bucketAudit).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seq := binary.BigEndian.Uint64(k)
		ev, err := decode[AuditEvent](t, bucketAudit, k, v)
		switch {
		case err != nil:
			brk = &AuditBreak{Seq: seq, Reason: "event does not decrypt: " + err.Error()}
		case seq != want || ev.Seq != seq:
			brk = &AuditBreak{Seq: want, Reason: fmt.Sprintf("event %d is missing or out of order", want)}
		case ev.PrevHash != prev:
			brk = &AuditBreak{Seq: seq, Reason: "previous-hash link does not match event " + fmt.Sprint(seq-1)}
		case chainHash(ev) != ev.Hash:
			brk = &AuditBreak{Seq: seq, Reason: "event content does not match its hash (edited)"}
		}
		if brk != nil {
			return n, brk, nil
		}
		prev, want = ev.Hash, want+1
		n++
	}
	if uint64(n) != head.Seq || prev != head.Hash {
		return n, &AuditBreak{Seq: uint64(n) + 1, Reason: fmt.Sprintf("chain ends at event %d but the recorded head is event %d", n, head.Seq)}, nil
	}
	return n, nil, nil
}
