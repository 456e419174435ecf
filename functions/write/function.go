// Package write is the command side: a Knative function that validates create
// commands and stores them on the Redis master.
package write

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Function is the write function instance.
type Function struct {
	preset    *Config // instead of the environment (NewWithConfig)
	cfg       Config
	log       *slog.Logger
	closer    io.Closer // the Redis client, or the Redis Cluster's clients
	store     *store.Store
	validator *record.Validator
	metrics   metrics
	now       func() time.Time
	events    *cloudevent.Endpoint
	ready     serve.Readiness
	source    string // of reply events
	guard     *guard
	relay     *relay             // nil without K_SINK
	stop      context.CancelFunc // ends what Start started beside the requests
	stopped   chan struct{}      // closed when the relay has given its leases up
}

type metrics struct {
	created       *prometheus.CounterVec
	createdByType sync.Map // type -> its child of created
	replays       prometheus.Counter
	unreplicated  prometheus.Counter
	failures      *prometheus.CounterVec
	events        *prometheus.CounterVec
	refusing      *prometheus.GaugeVec
	memory        prometheus.Gauge
	relay         relayMetrics
}

// New returns a function that reads its configuration from the environment in Start.
func New() *Function {
	f := &Function{log: slog.Default(), now: time.Now}
	f.metrics = metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_records_created_total", Help: "Records stored, by type.",
		}, []string{"type"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_create_replays_total", Help: "Creates answered with an earlier record (idempotency key or redelivered event).",
		}),
		unreplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_create_unreplicated_total", Help: "Creates stored on the master that fewer than WRITE_REPLICAS replicas confirmed in time.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_create_failures_total", Help: "Creates refused, by error code.",
		}, []string{"code"}),
		events: cloudevent.NewCounter(),
	}
	f.metrics.refusing, f.metrics.memory = newGuardMetrics()
	f.metrics.relay = newRelayMetrics()
	return f
}

// Start connects to Redis and loads the write script. An unreachable Redis does not
// fail Start: readiness reports it, and requests answer 503 until it is back.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := serve.Configure(f.preset, DefaultConfig())
	if err != nil {
		return err
	}
	f.cfg = cfg
	f.log = slog.Default().With("function", "write")
	store.SetLogger(f.log)
	f.validator = record.NewValidator(f.cfg.RecordTypes, f.cfg.MaxTextBytes)
	f.source = cloudevent.Source(DefaultEventSource)
	f.events = cloudevent.NewEndpoint(record.EventCreate, "plain JSON goes to POST /records", f.log, f.metrics.events, f.handleCreateEvent).
		Also(EventPing, f.handlePing)
	if c := f.cfg.Cluster(f.cfg.redis()); c != nil {
		f.closer, f.store = c, store.NewClustered(c, f.cfg.Partitions(), false).ForWrites()
	} else {
		rdb := store.NewClient(f.cfg.redis())
		f.closer, f.store = rdb, store.New(rdb).ForWrites()
	}
	if f.cfg.Sink != "" {
		f.store.WithOutbox(f.cfg.MaxPending)
		f.relay = newRelay(f.log, f.store, f.cfg, f.source, f.metrics.relay)
	}
	// A readiness check loads the scripts and, when Redis cannot be used (not
	// reachable, or refusing the function), logs why: once, here, and again only
	// when readiness changes.
	f.Ready(ctx)
	f.guard = &guard{log: f.log, store: f.store, refusing: f.metrics.refusing, memory: f.metrics.memory}
	f.guard.update(ctx)
	bg, stop := context.WithCancel(context.Background())
	f.stop = stop
	go f.guard.watch(bg)
	f.stopped = make(chan struct{})
	go func() {
		defer close(f.stopped)
		if f.relay != nil {
			f.relay.run(bg)
		}
	}()
	return nil
}

// Stop ends the limits watch and the relay (which gives its leases up, so another
// instance publishes at once) and closes the Redis client.
func (f *Function) Stop(ctx context.Context) error {
	if f.stop != nil {
		f.stop()
		select {
		case <-f.stopped:
		case <-ctx.Done():
		}
	}
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Ready reports whether the Redis master answers.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if f.store == nil {
		return false, errors.New("not started")
	}
	return f.ready.Report(f.log, f.store.Ping(ctx))
}

// Alive reports that the process can serve; Redis trouble is readiness, not liveness.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Collectors returns the function's Prometheus metrics.
func (f *Function) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{f.metrics.created, f.metrics.replays, f.metrics.unreplicated, f.metrics.failures,
		f.metrics.events, f.metrics.refusing, f.metrics.memory}, f.metrics.relay.collectors()...)
}

// Handle serves POST /records and CloudEvents on POST /.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		f.events.ServeHTTP(w, r)
	case r.URL.Path != "/records":
		serve.Error(w, r, f.log, serve.NotFound(r.URL.Path))
	case r.Method != http.MethodPost:
		serve.Error(w, r, f.log, serve.MethodNotAllowed(r.Method, http.MethodPost))
	default:
		f.create(w, r)
	}
}
