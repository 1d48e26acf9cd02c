package hub

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pamd/pamd/internal/leaktest"
	"github.com/pamd/pamd/server/ca"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// TestMain fails the run when the tests leave goroutines running.
func TestMain(m *testing.M) { leaktest.Main(m) }

// testHub is a hub over a fresh store with CAs of its own, as the tests
// use one: four stream slots per gateway, hour-long gateway certificates,
// logs discarded. change, if not nil, adjusts the Config first.
func testHub(t *testing.T, change func(*Config)) (*Hub, *store.Store, *ca.Authority) {
	t.Helper()
	st := storetest.Open(t)
	a, err := ca.Load(st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Streams: 4, CA: a, CertLifetime: time.Hour}
	if change != nil {
		change(&cfg)
	}
	return New(cfg), st, a
}
