package proxy

import (
	"context"
	"slices"
	"testing"
)

func TestNotices(t *testing.T) {
	n := &Notices{}
	ctx := WithNotices(context.Background(), n)
	var a, b []string
	cancelA := NoticesOf(ctx).Subscribe(func(m string) { a = append(a, m) })
	NoticesOf(ctx).Subscribe(func(m string) { b = append(b, m) })
	n.Post("one")
	cancelA()
	n.Post("two")
	if !slices.Equal(a, []string{"one"}) || !slices.Equal(b, []string{"one", "two"}) {
		t.Errorf("a %q, b %q", a, b)
	}
	// A connection without notices: subscribing and posting do nothing.
	none := NoticesOf(context.Background())
	none.Subscribe(func(string) { t.Error("shown without notices") })()
	none.Post("x")
}
