package faults_test

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// quiet drops go-redis' own log lines (dial failures, sentinel switches): the tests
// provoke them on purpose and count their effects instead.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestMain keeps the functions' per-request logs out of the test output, and removes
// the binaries that the tests built once they have all run.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quiet{})
	os.Exit(testenv.Run(m))
}
