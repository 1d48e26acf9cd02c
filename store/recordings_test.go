package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// appendRecords stores a record {"n":N} for each gateway number N.
func appendRecords(t *testing.T, st *store.Store, session, gateway string, gatewaySeqs ...uint64) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for _, n := range gatewaySeqs {
			if _, err := tx.AppendRecording(session, gateway, n, json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// recordsAfter is a session's records after cursor seq, concatenated,
// and the new cursor.
func recordsAfter(t *testing.T, st *store.Store, session string, seq uint64) (string, uint64) {
	t.Helper()
	var got string
	var last uint64
	err := st.View(func(tx *store.Tx) error {
		recs, n, err := tx.RecordingsAfter(session, seq)
		for _, r := range recs {
			got += string(r)
		}
		last = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, last
}

// RecordingsAfter follows a session as records arrive: from a cursor, only
// the newer ones of that session, and the cursor stays when there is none.
func TestRecordingsAfter(t *testing.T) {
	st := storetest.Open(t)
	appendRecords(t, st, "s1", "gw", 3, 9, 10)
	appendRecords(t, st, "s10", "gw", 1) // shares the prefix "s1" but not "s1/"
	appendRecords(t, st, "s2", "gw", 4)
	if got, last := recordsAfter(t, st, "s1", 0); got != `{"n":3}{"n":9}{"n":10}` || last != 3 {
		t.Errorf("from 0: %s, %d", got, last)
	}
	if got, last := recordsAfter(t, st, "s1", 2); got != `{"n":10}` || last != 3 {
		t.Errorf("after 2: %s, %d", got, last)
	}
	if got, last := recordsAfter(t, st, "s1", 3); got != "" || last != 3 {
		t.Errorf("after the last: %s, %d", got, last)
	}
	appendRecords(t, st, "s1", "gw", 12)
	if got, last := recordsAfter(t, st, "s1", 3); got != `{"n":12}` || last != 4 {
		t.Errorf("a new one: %s, %d", got, last)
	}
	if got, last := recordsAfter(t, st, "none", 5); got != "" || last != 5 {
		t.Errorf("no such session: %s, %d", got, last)
	}
}

// Two gateways of a group number their records independently: for one
// session, the same numbers from both are two records each, in the order
// stored; a gateway sending a record again (its ack lost) adds nothing.
func TestRecordingsFromTwoGateways(t *testing.T) {
	st := storetest.Open(t)
	appendRecords(t, st, "s1", "gwa", 1, 2)
	appendRecords(t, st, "s1", "gwb", 1, 2)
	appendRecords(t, st, "s1", "gwa", 2, 3) // 2 again
	err := st.Update(func(tx *store.Tx) error {
		stored, err := tx.AppendRecording("s1", "gwb", 1, json.RawMessage(`{"n":1}`))
		if err == nil && stored {
			t.Error("a record sent again was stored again")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, last := recordsAfter(t, st, "s1", 0); got != `{"n":1}{"n":2}{"n":1}{"n":2}{"n":3}` || last != 5 {
		t.Errorf("records: %s, %d", got, last)
	}
}

// A store written before the server numbered records keeps them under the
// gateway's numbers: they read in order, and new records follow them.
func TestRecordingsAfterOldKeys(t *testing.T) {
	st := storetest.Open(t)
	err := st.Update(func(tx *store.Tx) error {
		for _, n := range []uint64{7, 1000} {
			if err := store.PutRecordingAsBefore(tx, "s1", n, json.RawMessage(fmt.Sprintf(`{"old":%d}`, n))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	appendRecords(t, st, "s1", "gw", 1)
	appendRecords(t, st, "s0", "gw", 1)
	if got, last := recordsAfter(t, st, "s1", 7); got != `{"old":1000}{"n":1}` || last != 1001 {
		t.Errorf("after 7: %s, %d", got, last)
	}
}
