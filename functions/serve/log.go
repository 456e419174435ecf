package serve

import (
	"log/slog"
	"os"
	"strings"
)

// Logger returns the JSON logger every process of this project writes with;
// LOG_LEVEL=debug adds detail.
func Logger(service string) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})).With("service", service)
}
