package blackbox

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps the functions' per-request logs out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
