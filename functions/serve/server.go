package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves f on ln with the settings of cfg until ctx ends, then drains for at
// most cfg.DrainTimeout and calls f's Stop. The function must already be started.
func Serve(ctx context.Context, f Handler, ln net.Listener, cfg Config, log *slog.Logger) error {
	drain := cfg.DrainTimeout
	srv := &http.Server{
		Handler:           Mux(f, cfg),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	listeners := []net.Listener{ln}
	if cfg.MetricsPort > 0 {
		mln, err := net.Listen("tcp", cfg.MetricsAddr())
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		listeners = append(listeners, mln)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- srv.Serve(l) }()
	}
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
	if s, ok := f.(Stopper); ok {
		if err := s.Stop(dctx); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("stop: %w", err))
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
