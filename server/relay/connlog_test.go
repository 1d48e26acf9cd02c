package relay

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// A connection never waits for the disk: with the store's writer held by
// another transaction, put returns at once, and every record (a start, then
// its end) is committed once the writer is free.
func TestConnLogPutDoesNotWaitForTheStore(t *testing.T) {
	st := storetest.Open(t)
	l := newConnLog(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.start()
	held, release := make(chan struct{}), make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- st.Update(func(tx *store.Tx) error { close(held); <-release; return nil })
	}()
	<-held
	putsDone := make(chan struct{})
	go func() {
		defer close(putsDone)
		for i := range 1000 {
			c := store.Connection{ID: fmt.Sprintf("c%04d", i), SessionID: "s1", StartedAt: time.Now().UTC()}
			l.put(c)
			c.EndedAt, c.BytesUp = time.Now().UTC(), int64(i)
			l.put(c)
		}
	}()
	select {
	case <-putsDone:
	case <-time.After(5 * time.Second):
		close(release)
		<-putsDone
		t.Fatal("2000 puts with the store's writer held did not return: put waits for the disk")
	}
	close(release)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	l.stop()
	var conns []*store.Connection
	if err := st.View(func(tx *store.Tx) (err error) { conns, err = tx.Connections("s1"); return }); err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1000 {
		t.Fatalf("%d connections recorded, want 1000", len(conns))
	}
	for _, c := range conns {
		if c.EndedAt.IsZero() {
			t.Fatalf("connection %s kept its start record, not its end record", c.ID)
		}
	}
}

// After stop (the server shutting down), a record is committed by put
// itself before it returns.
func TestConnLogAfterStopCommitsAtOnce(t *testing.T) {
	st := storetest.Open(t)
	l := newConnLog(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.start()
	l.stop()
	l.put(store.Connection{ID: "late", SessionID: "s2", StartedAt: time.Now().UTC()})
	var conns []*store.Connection
	st.View(func(tx *store.Tx) (err error) { conns, err = tx.Connections("s2"); return })
	if len(conns) != 1 || conns[0].ID != "late" {
		t.Fatalf("records after stop: %+v", conns)
	}
}

// A steady stream of connections, one every millisecond, costs a commit
// per commitEvery at most, not two per connection, and each record still
// reaches the store soon after it was put.
func TestConnLogSpacesCommits(t *testing.T) {
	st := storetest.Open(t)
	l := newConnLog(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.start()
	defer l.stop()
	const n = 100
	began := time.Now()
	for i := range n {
		c := store.Connection{ID: fmt.Sprintf("c%04d", i), SessionID: "s3", StartedAt: time.Now().UTC()}
		l.put(c)
		c.EndedAt = time.Now().UTC()
		l.put(c)
		time.Sleep(time.Millisecond)
	}
	took := time.Since(began)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var conns []*store.Connection
		if err := st.View(func(tx *store.Tx) (err error) { conns, err = tx.Connections("s3"); return }); err != nil {
			t.Fatal(err)
		}
		if len(conns) == n && !conns[n-1].EndedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records stored 5 s after the last put", len(conns), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The writer may commit once at the start of each window and once more
	// for the last records.
	if most := int64(took/commitEvery) + 2; l.commits.Load() > most {
		t.Fatalf("%d commits for %d connections over %s; want at most %d", l.commits.Load(), n, took.Round(time.Millisecond), most)
	}
}
