// Package function is the write function (cqrs-write) as knative/func builds it.
// func.yaml says invoke: http, so func's Go scaffolding is a main that calls
// http.Start(function.New()) from knative.dev/func-go. The root func.yaml describes
// cqrs-write because func builds one function per module; cqrs-read and cqrs-ui are
// built by ko from knative/.
//
// knative.dev/func-go answers /health/readiness and /health/liveness itself and hands
// every other path to Handle; it listens before Start has returned, and on SIGTERM
// lets in-flight requests finish for a fixed DrainTimeout. New adapts the write
// function to that runtime so that it serves what the ko image serves: /metrics, the
// request counters and the request bounds (BODY_TIMEOUT) come from the same routes
// (serve.Mux, built in Start with the runtime's configuration), requests that arrive
// before Start has finished get 503, and the logs are the same JSON lines.
package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// DrainTimeout is how long knative.dev/func-go lets in-flight requests finish after
// SIGTERM (its http.ServerShutdownTimeout, a constant). DRAIN_TIMEOUT cannot change
// it, so Start refuses any other value rather than ignore it.
const DrainTimeout = 30 * time.Second

// Function is the write function with the routes of the ko image.
type Function struct {
	*write.Function
	routes  http.Handler // set by Start, read once started is true
	started atomic.Bool
}

// New returns the write function for knative.dev/func-go; the scaffolding starts and
// serves it.
func New() *Function { return &Function{Function: write.New()} }

// Start reads the runtime's variables as the ko image does (BODY_TIMEOUT; a
// DRAIN_TIMEOUT other than func-go's own, and METRICS_PORT, which needs a second
// listener, are refused), then starts the write function
// (configuration from the environment, Redis client). func-go runs it beside the
// listener and stops the process when it fails.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	rc, err := serve.Load(serve.DefaultConfig())
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if rc.DrainTimeout != DrainTimeout {
		return fmt.Errorf("configuration: DRAIN_TIMEOUT=%s: knative.dev/func-go drains for a fixed %s; leave it unset for func builds", rc.DrainTimeout, DrainTimeout)
	}
	if rc.MetricsPort != 0 {
		return fmt.Errorf("configuration: METRICS_PORT=%d: knative.dev/func-go serves one port, /metrics on it; leave it unset for func builds", rc.MetricsPort)
	}
	// Each line written as it comes: func-go ends the process, with no hook to flush
	// lines held back in a batch.
	slog.SetDefault(serve.Logger("cqrs-write", os.Stdout))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.Function.Start(ctx, cfg); err != nil {
		return err
	}
	f.routes = serve.Mux(f.Function, rc)
	f.started.Store(true)
	return nil
}

// Stop closes the Redis client once Start has finished.
func (f *Function) Stop(ctx context.Context) error {
	if !f.started.Load() {
		return nil
	}
	return f.Function.Stop(ctx)
}

// Ready is false until Start has finished, then follows the Redis master, answering
// within 2 s as the ko runtime's probe does.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if !f.started.Load() {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return f.Function.Ready(ctx)
}

// Handle serves /metrics and the write function's paths, counted as the ko runtime
// counts them; before Start has finished it answers 503.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	if !f.started.Load() {
		serve.Error(w, r, slog.Default(), fail.Unavailable("the function is starting; retry", nil))
		return
	}
	f.routes.ServeHTTP(w, r)
}
