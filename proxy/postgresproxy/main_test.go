package postgresproxy

import (
	"testing"

	"github.com/pamd/pamd/internal/leaktest"
)

// TestMain fails the run when the tests leave goroutines running.
func TestMain(m *testing.M) { leaktest.Main(m) }
