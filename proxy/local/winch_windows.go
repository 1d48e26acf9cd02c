//go:build windows

package local

import (
	"time"

	"golang.org/x/term"
)

// watchResize polls the console size: Windows has no SIGWINCH.
func watchResize(fd int, fn func(w, h int)) (stop func()) {
	done := make(chan struct{})
	go func() {
		lw, lh, _ := term.GetSize(fd)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if w, h, err := term.GetSize(fd); err == nil && (w != lw || h != lh) {
					lw, lh = w, h
					fn(w, h)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
