// Package serve is the runtime of this project's services: it runs an instanced
// function the way knative/func's Go runtime does (Start with the environment,
// Handle on PORT or LISTEN_ADDRESS, /health/readiness and /health/liveness from
// Ready and Alive, Prometheus metrics on /metrics, and on SIGTERM a drain of the
// requests in flight before Stop), and it gives every service the same JSON answers,
// request bounds and strict JSON decoding. Both functions and the UI run on it; it
// knows nothing of records or Redis.
package serve

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Handler is the one method every function has.
type Handler interface {
	Handle(w http.ResponseWriter, r *http.Request)
}

// Starter is called once before the first request with the process environment.
type Starter interface {
	Start(ctx context.Context, cfg map[string]string) error
}

// Stopper is called once after the last request has finished.
type Stopper interface {
	Stop(ctx context.Context) error
}

// ReadinessReporter answers /health/readiness.
type ReadinessReporter interface {
	Ready(ctx context.Context) (bool, error)
}

// LivenessReporter answers /health/liveness.
type LivenessReporter interface {
	Alive(ctx context.Context) (bool, error)
}

// MetricsReporter lets a function add its own collectors to /metrics.
type MetricsReporter interface {
	Collectors() []prometheus.Collector
}

// PrivateMetrics is a function whose /metrics stay off its public route: they are
// served only on METRICS_PORT, when that is set.
type PrivateMetrics interface {
	PrivateMetrics()
}

// HeaderSetter sets headers on every answer, the runtime's (probes, metrics) too,
// such as a service's security headers.
type HeaderSetter interface {
	SetHeaders(h http.Header)
}
