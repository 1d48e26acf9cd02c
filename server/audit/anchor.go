package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pamd/pamd/store"
)

// AnchorEvery is how often the anchor looks for a new audit head by
// default.
const AnchorEvery = time.Minute

// Anchor writes the audit log's head (SEQ:HASH, what pamd audit head
// prints) outside the store as it moves: appended as a JSON line to a
// file, or sent to the system log (Dest "syslog"). A copy of the store
// restored from an older backup then fails pamd audit verify --expect
// with the last head written, however well the copy's own chain checks.
type Anchor struct {
	St    *store.Store
	Log   *slog.Logger
	Dest  string        // a file, or "syslog"
	Every time.Duration // 0: AnchorEvery
}

// AnchorLine is what a file anchor appends per head.
type AnchorLine struct {
	Time time.Time `json:"time"`
	Head string    `json:"head"` // SEQ:HASH, as pamd audit verify --expect takes it
}

// Open checks that the destination can be written, before the server
// serves: a wrong path fails the start rather than the first write.
func (a *Anchor) Open() (func(string) error, error) {
	if a.Dest == "syslog" {
		return openSyslog()
	}
	f, err := os.OpenFile(a.Dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	return func(head string) error {
		f, err := os.OpenFile(a.Dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		line, _ := json.Marshal(AnchorLine{Time: time.Now().UTC(), Head: head})
		_, err = f.Write(append(line, '\n'))
		if err == nil {
			err = f.Sync() // the point is that it outlives the store
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

// Run writes the head at once, then each time it moved when it looks
// (every Every), and a last time when ctx ends (the server stopping), so
// the last head written is the store's last. The caller keeps the store
// open until Run returns.
func (a *Anchor) Run(ctx context.Context, write func(string) error) {
	every := a.Every
	if every <= 0 {
		every = AnchorEvery
	}
	var last string
	anchor := func() {
		var head string
		err := a.St.View(func(tx *store.Tx) error {
			seq, hash, err := tx.AuditHead()
			head = fmt.Sprintf("%d:%s", seq, hash)
			return err
		})
		if err != nil || head == last {
			return
		}
		if err := write(head); err != nil {
			a.Log.Error("audit anchor: cannot write the audit head", "dest", a.Dest, "err", err)
			return
		}
		last = head
	}
	anchor()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			anchor()
		case <-ctx.Done():
			anchor()
			return
		}
	}
}
