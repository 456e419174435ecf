package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Service is the name the UI logs and reports under.
const Service = "cqrs-ui"

// Logger returns a JSON logger like the functions'; LOG_LEVEL=debug adds detail.
func Logger() *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})).With("service", Service)
}

// Main runs the UI service as the whole process and returns the exit code. A bad
// configuration prints one line naming the variable and returns 2.
func Main() int {
	log := Logger()
	slog.SetDefault(log)
	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", Service, err)
		return 2
	}
	srv, err := New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Service, err)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: listen: %v\n", Service, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("listening", "addr", ln.Addr().String(), "write", cfg.WriteURL, "read", cfg.ReadURL)
	if err := Serve(ctx, srv, ln, cfg.DrainTimeout, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// Serve serves h on ln until ctx ends, then lets in-flight requests finish for at
// most drain.
func Serve(ctx context.Context, h http.Handler, ln net.Listener, drain time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("draining", "timeout", drain.String())
	case serveErr = <-errc:
	}
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("drain: %w", err))
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
