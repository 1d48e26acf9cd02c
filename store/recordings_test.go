package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// RecordingsAfter follows a session as records arrive: from a cursor, only
// the newer ones of that session, and the cursor stays when there is none.
func TestRecordingsAfter(t *testing.T) {
	st := storetest.Open(t)
	put := func(session string, seqs ...uint64) {
		t.Helper()
		err := st.Update(func(tx *store.Tx) error {
			for _, n := range seqs {
				if err := tx.PutRecording(session, n, json.RawMessage(fmt.Sprintf(`{"seq":%d}`, n))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	after := func(session string, seq uint64) (string, uint64) {
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
	put("s1", 3, 9, 10)
	put("s10", 1) // shares the prefix "s1" but not "s1/"
	put("s2", 4)
	if got, last := after("s1", 0); got != `{"seq":3}{"seq":9}{"seq":10}` || last != 10 {
		t.Errorf("from 0: %s, %d", got, last)
	}
	if got, last := after("s1", 9); got != `{"seq":10}` || last != 10 {
		t.Errorf("after 9: %s, %d", got, last)
	}
	if got, last := after("s1", 10); got != "" || last != 10 {
		t.Errorf("after the last: %s, %d", got, last)
	}
	put("s1", 12)
	if got, last := after("s1", 10); got != `{"seq":12}` || last != 12 {
		t.Errorf("a new one: %s, %d", got, last)
	}
	if got, last := after("none", 5); got != "" || last != 5 {
		t.Errorf("no such session: %s, %d", got, last)
	}
}
