package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// The file anchor appends the head each time it moved, and once more when
// it stops; its last line is the store's head.
func TestAnchorFile(t *testing.T) {
	st := storetest.Open(t)
	file := filepath.Join(t.TempDir(), "anchor.jsonl")
	a := &Anchor{St: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Dest: file, Every: 10 * time.Millisecond}
	write, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("anchor file: %v, %v", fi, err)
	}
	event := func(i int) {
		if err := st.Update(func(tx *store.Tx) error {
			return Append(tx, "admin", "test.event", fmt.Sprint(i), "success", "", "")
		}); err != nil {
			t.Fatal(err)
		}
	}
	head := func() string {
		var h string
		st.View(func(tx *store.Tx) error {
			seq, hash, err := tx.AuditHead()
			h = fmt.Sprintf("%d:%s", seq, hash)
			return err
		})
		return h
	}
	lines := func() []AnchorLine {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []AnchorLine
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l AnchorLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("anchor line %q: %v", sc.Text(), err)
			}
			out = append(out, l)
		}
		return out
	}
	event(0)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx, write) }()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if l := lines(); len(l) > 0 && l[len(l)-1].Head == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the anchor's last head is not %s: %+v", want, lines())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(head())
	n := len(lines())
	time.Sleep(50 * time.Millisecond) // several looks, no new event
	if len(lines()) != n {
		t.Fatalf("the anchor wrote an unchanged head again: %+v", lines())
	}
	event(1)
	waitFor(head())
	event(2)
	stop()
	<-done
	if l := lines(); l[len(l)-1].Head != head() {
		t.Fatalf("after stopping, the last head written is %s, the store's %s", l[len(l)-1].Head, head())
	}

	// A destination that cannot be written fails at once.
	if _, err := (&Anchor{St: st, Dest: filepath.Join(t.TempDir(), "no", "such", "dir")}).Open(); err == nil {
		t.Fatal("an anchor in a missing directory opened")
	}
}
