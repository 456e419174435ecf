package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// slogLogger sends go-redis' own messages (dial failures, pool events) to slog at
// debug level, so the processes keep writing JSON lines only; the errors that matter
// reach the caller and are logged there.
type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

func init() { redis.SetLogger(slogLogger{}) }
