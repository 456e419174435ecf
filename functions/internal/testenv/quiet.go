package testenv

import (
	"context"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RunQuiet is Run for suites that provoke Redis failures on purpose (dial failures,
// failovers, refusals) and count their effects: the in-process functions' logs and
// go-redis' own log lines are dropped so that the test output shows the tests'.
func RunQuiet(m *testing.M) int {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quiet{})
	return Run(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
