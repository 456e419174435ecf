// Package read is the query side: a Knative function that answers queries from a
// Redis replica, waits for the replica when a client asks to read its own write, and
// falls back to the master only when configured to, saying so in every answer.
package read

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Function is the read function instance.
type Function struct {
	preset  *Config // instead of the environment (NewWithConfig)
	cfg     Config
	log     *slog.Logger
	clients []io.Closer
	replica *store.Store
	master  *store.Store // nil unless READ_FALLBACK=master
	// searches holds a slot for each search running in Redis; see searchSlot.
	searches  chan struct{}
	parts     int  // partitions of the store
	clustered bool // on a Redis Cluster: tokens only, no one seq
	metrics   metrics
	events    *cloudevent.Endpoint
	ready     serve.Readiness
	source    string // of reply events
}

type metrics struct {
	served    *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	waits     prometheus.Histogram
	events    *prometheus.CounterVec
}

// Values of X-Served-By.
const (
	ServedByReplica = "replica"
	ServedByMaster  = "master"
)

// New returns a function that reads its configuration from the environment in Start.
func New() *Function {
	return &Function{log: slog.Default(), metrics: metrics{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_reads_total", Help: "Queries answered, by the Redis role that served them.",
		}, []string{"served_by"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_read_fallbacks_total", Help: "Queries the replica could not serve, by reason.",
		}, []string{"reason"}),
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cqrs_read_replica_wait_seconds", Help: "Time spent waiting for the replica to reach minSeq.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		events: cloudevent.NewCounter(),
	}}
}

// Start connects to the replica (and the master when it is the fallback).
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := serve.Configure(f.preset, DefaultConfig())
	if err != nil {
		return err
	}
	f.cfg = cfg
	f.log = slog.Default().With("function", "read")
	store.SetLogger(f.log)
	f.source = cloudevent.Source(DefaultEventSource)
	f.events = cloudevent.NewEndpoint(record.EventQuery, "plain queries go to GET /records", f.log, f.metrics.events, f.handleQueryEvent)
	f.searches = make(chan struct{}, f.cfg.ReadSearchSlots)
	if c := f.cfg.Cluster(f.cfg.replica()); c != nil {
		// One set of clients: the replicas for reads, the masters for the fallback.
		f.clients = append(f.clients, c)
		f.replica = store.NewClustered(c, f.cfg.Partitions(), true)
		if f.cfg.ReadFallback == FallbackMaster {
			f.master = store.NewClustered(c, f.cfg.Partitions(), false)
		}
		f.clustered = true
	} else {
		rc := store.NewClient(f.cfg.replica())
		f.clients = append(f.clients, rc)
		f.replica = store.New(rc)
		if f.cfg.ReadFallback == FallbackMaster {
			mc := store.NewClient(f.cfg.master())
			f.clients = append(f.clients, mc)
			f.master = store.New(mc)
		}
	}
	f.parts = f.replica.Partitions()
	// A readiness check loads the scripts and, when neither Redis can be used (not
	// reachable, or refusing the function), logs why: once, here, and again only
	// when readiness changes.
	f.Ready(ctx)
	return nil
}

// Stop closes the Redis clients.
func (f *Function) Stop(context.Context) error {
	var errs []error
	for _, c := range f.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Ready reports whether queries can be answered: the replica answers, or the master
// does and is the configured fallback.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if f.replica == nil {
		return false, errors.New("not started")
	}
	err := f.replica.Ping(ctx)
	if err != nil && f.master != nil && f.master.Ping(ctx) == nil {
		err = nil
	}
	return f.ready.Report(f.log, err)
}

// Alive reports that the process can serve.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Collectors returns the function's Prometheus metrics.
func (f *Function) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.metrics.served, f.metrics.fallbacks, f.metrics.waits, f.metrics.events}
}

// Handle serves GET /records and GET /records/{id}, and query events on POST /.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	id, isRecord := strings.CutPrefix(r.URL.Path, "/records/")
	switch {
	case r.URL.Path == "/":
		f.events.ServeHTTP(w, r)
	case r.URL.Path != "/records" && !isRecord:
		serve.Error(w, r, f.log, serve.NotFound(r.URL.Path))
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		serve.Error(w, r, f.log, serve.MethodNotAllowed(r.Method, "GET, HEAD"))
	case isRecord:
		f.get(w, r, id)
	default:
		f.list(w, r)
	}
}
