package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Main runs f as the whole process and returns the exit code. A configuration error
// prints one line to stderr and returns 2 before anything listens.
func Main(service string, f Handler) int {
	out := newLineBatcher(os.Stdout, logInterval)
	defer out.Flush()
	log := Logger(service, out)
	slog.SetDefault(log)
	cfg, err := Load(DefaultConfig())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", service, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if s, ok := f.(Starter); ok {
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Start(startCtx, environ())
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
			return 2
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: listen: %v\n", service, err)
		return 1
	}
	log.Info("listening", "addr", ln.Addr().String())
	if err := Serve(ctx, f, ln, cfg, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
