package proxy

import (
	"context"
	"sync"
)

// Notices carries messages for the person at the client end of one proxied
// connection (someone began watching the session live), from the gateway
// to the handler serving it. A handler that can show a message (a
// terminal) subscribes; the others never see them. The zero value is
// ready; a nil *Notices takes no subscriber and posts nothing.
type Notices struct {
	mu   sync.Mutex
	next int
	subs map[int]func(string)
}

// Subscribe calls show with each message posted until cancel is called.
// show must not block: Post calls it on the poster's goroutine.
func (n *Notices) Subscribe(show func(string)) (cancel func()) {
	if n == nil {
		return func() {}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs == nil {
		n.subs = map[int]func(string){}
	}
	id := n.next
	n.next++
	n.subs[id] = show
	return func() {
		n.mu.Lock()
		delete(n.subs, id)
		n.mu.Unlock()
	}
}

// Post shows msg to every subscriber.
func (n *Notices) Post(msg string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	subs := make([]func(string), 0, len(n.subs))
	for _, f := range n.subs {
		subs = append(subs, f)
	}
	n.mu.Unlock()
	for _, f := range subs {
		f(msg)
	}
}

type noticesKey struct{}

// WithNotices gives the handler serving ctx's connection its notices.
func WithNotices(ctx context.Context, n *Notices) context.Context {
	return context.WithValue(ctx, noticesKey{}, n)
}

// NoticesOf returns the notices of ctx's connection, or nil.
func NoticesOf(ctx context.Context) *Notices {
	n, _ := ctx.Value(noticesKey{}).(*Notices)
	return n
}
