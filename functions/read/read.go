// Package read is the query side: a Knative function that answers queries from a
// Redis replica, waits for the replica when a client asks to read its own write, and
// falls back to the master only when configured to, saying so in every answer.
package read

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/reply"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Function is the read function instance.
type Function struct {
	cfg     *Config
	log     *slog.Logger
	clients []redis.UniversalClient
	replica *store.Store
	master  *store.Store // nil unless READ_FALLBACK=master
	types   map[string]bool
	metrics metrics
	events  *cloudevent.Endpoint
	source  string // of reply events
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

// NewWithConfig returns a function that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *Function {
	f := New()
	f.cfg = &cfg
	return f
}

// Start connects to the replica (and the master when it is the fallback).
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := serve.Configure(f.cfg)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	f.cfg = cfg
	f.log = slog.Default().With("function", "read")
	f.source = cloudevent.Source(DefaultEventSource)
	f.events = cloudevent.NewEndpoint(record.EventQuery, "plain queries go to GET /records", f.log, f.metrics.events, f.handleQueryEvent)
	f.types = make(map[string]bool)
	for _, t := range f.cfg.RecordTypes {
		f.types[t] = true
	}
	rc := store.NewClient(f.cfg.replica())
	f.clients = append(f.clients, rc)
	f.replica = store.New(rc)
	if f.cfg.ReadFallback == FallbackMaster {
		mc := store.NewClient(f.cfg.master())
		f.clients = append(f.clients, mc)
		f.master = store.New(mc)
	}
	if err := f.replica.Load(ctx); err != nil {
		f.log.Warn("replica not reachable at start; will retry on each request", "err", err)
	}
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
	if err != nil && f.master != nil {
		if merr := f.master.Ping(ctx); merr == nil {
			return true, nil
		}
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// Alive reports that the process can serve.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Collectors returns the function's Prometheus metrics.
func (f *Function) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.metrics.served, f.metrics.fallbacks, f.metrics.waits, f.metrics.events}
}

// Handle serves GET /records and GET /records/{id}.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.URL.Path == "/":
		f.events.ServeHTTP(w, r)
	case path == "/records" || strings.HasPrefix(path, "/records/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			reply.Error(w, r, f.log, reply.MethodNotAllowed(r.Method, "GET, HEAD"))
			return
		}
		if path == "/records" {
			f.list(w, r)
			return
		}
		f.get(w, r, strings.TrimPrefix(path, "/records/"))
	default:
		reply.Error(w, r, f.log, reply.NotFound(path))
	}
}

// Result is a page as the read side returns it. The records are the documents the
// write side stored, passed through without decoding.
type Result struct {
	Records    []json.RawMessage `json:"records"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

// writeResult writes res as encoding/json would, without re-validating documents
// that the write side encoded.
func writeResult(w http.ResponseWriter, res Result) {
	n := len(`{"records":[],"nextCursor":""}`) + 24
	for _, d := range res.Records {
		n += len(d) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"records":[`...)
	for i, d := range res.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d...)
	}
	b = append(b, ']')
	if res.NextCursor != "" {
		b = append(b, `,"nextCursor":"`...)
		b = append(b, res.NextCursor...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// Served says which Redis answered and how far it had got.
type Served struct {
	By  string
	Seq int64
}

func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	v, err := queryValues(r.URL.RawQuery)
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	q, err := f.ParseQuery(v, r.Header.Get("X-Min-Seq"))
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	res, served, err := f.Query(r.Context(), q)
	setServed(w.Header(), served)
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	writeResult(w, res)
}

func (f *Function) get(w http.ResponseWriter, r *http.Request, id string) {
	v, err := queryValues(r.URL.RawQuery)
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	minSeq, err := parseMinSeq(v.Get("minSeq"), r.Header.Get("X-Min-Seq"))
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	var rec json.RawMessage
	served, err := f.consistent(r.Context(), minSeq, func(ctx context.Context, s *store.Store) (int64, error) {
		var seq int64
		var err error
		rec, seq, err = s.GetDoc(ctx, id)
		if record.ErrorCode(err) == record.ENOTFOUND {
			// Not found is an answer, as long as the store had caught up.
			return seq, errNotFound{err}
		}
		return seq, err
	})
	setServed(w.Header(), served)
	var nf errNotFound
	if errors.As(err, &nf) {
		reply.Error(w, r, f.log, nf.err)
		return
	}
	if err != nil {
		reply.Error(w, r, f.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(rec)+1))
	w.Write(append(rec, '\n'))
}

type errNotFound struct{ err error }

func (e errNotFound) Error() string { return e.err.Error() }

// setServed says who answered; an error before any Redis answered says nothing.
func setServed(h http.Header, s Served) {
	if s.By == "" {
		return
	}
	h.Set("X-Served-By", s.By)
	h.Set("X-Replica-Seq", strconv.FormatInt(s.Seq, 10))
}

// Query is a validated read request.
type Query struct {
	store.Query
	MinSeq int64
}

// Limits of a query.
const (
	DefaultLimit  = 25
	MaxLimit      = 100
	maxQueryBytes = 1024
	maxQueryWords = 16
)

// queryValues parses a raw query string strictly. A malformed escape or a parameter
// given twice is refused: dropping or picking one would answer a query the client did
// not send.
func queryValues(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, record.Invalidf("query", "malformed query string: %v", err)
	}
	for _, k := range []string{"type", "q", "limit", "cursor", "minSeq"} {
		if n := len(v[k]); n > 1 {
			return nil, record.Invalidf(k, "%s is given %d times; give it once", k, n)
		}
	}
	return v, nil
}

// ParseQuery validates the query parameters of GET /records; header is X-Min-Seq.
func (f *Function) ParseQuery(v url.Values, header string) (Query, error) {
	q := Query{Query: store.Query{Limit: DefaultLimit, Type: v.Get("type")}}
	if q.Type != "" && !f.types[q.Type] {
		return q, record.Invalidf("type", "unknown type %q; known: %s", q.Type, strings.Join(f.cfg.RecordTypes, ", "))
	}
	if s := v.Get("q"); s != "" {
		if len(s) > maxQueryBytes {
			return q, record.Invalidf("q", "q is over %d bytes", maxQueryBytes)
		}
		q.Words = record.Tokenize(s)
		if len(q.Words) == 0 {
			return q, record.Invalid("q", "q holds no words (letters or digits)")
		}
		if len(q.Words) > maxQueryWords {
			return q, record.Invalidf("q", "q holds more than %d words", maxQueryWords)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, record.Invalidf("limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return q, record.Invalid("cursor", "cursor is not one this function returned as nextCursor")
		}
		q.Before = n
	}
	var err error
	q.MinSeq, err = parseMinSeq(v.Get("minSeq"), header)
	return q, err
}

func parseMinSeq(param, header string) (int64, error) {
	s, field := param, "minSeq"
	if s == "" {
		s, field = header, "X-Min-Seq"
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, record.Invalidf(field, "%s must be a whole number, the seq of a record", field)
	}
	return n, nil
}

// Query answers q, newest first.
func (f *Function) Query(ctx context.Context, q Query) (Result, Served, error) {
	var page store.DocPage
	served, err := f.consistent(ctx, q.MinSeq, func(ctx context.Context, s *store.Store) (int64, error) {
		var err error
		page, err = s.PageDocs(ctx, q.Query)
		return page.Seq, err
	})
	if err != nil {
		return Result{}, served, err
	}
	res := Result{Records: page.Docs}
	if page.Next > 0 {
		res.NextCursor = strconv.FormatInt(page.Next, 10)
	}
	return res, served, nil
}

// consistent runs read against the replica and accepts its answer once the replica
// has applied minSeq. While it has not, it waits (polling its seq) up to
// READ_MAX_WAIT; then, or when the replica fails, it asks the master if that is the
// fallback, or gives up with 503.
func (f *Function) consistent(ctx context.Context, minSeq int64, read func(context.Context, *store.Store) (int64, error)) (Served, error) {
	var nf errNotFound
	// The replica's answer counts (a record or a not-found) once it has applied minSeq.
	current := func(seq int64, err error) bool { return (err == nil || errors.As(err, &nf)) && seq >= minSeq }
	seq, err := read(ctx, f.replica)
	if current(seq, err) {
		f.metrics.served.WithLabelValues(ServedByReplica).Inc()
		return Served{By: ServedByReplica, Seq: seq}, err
	}
	reason := "lag"
	if err != nil && !errors.As(err, &nf) {
		reason = "replica_error"
		f.log.Warn("replica failed", "err", err)
	} else {
		start := time.Now()
		caught, werr := f.waitFor(ctx, minSeq)
		f.metrics.waits.Observe(time.Since(start).Seconds())
		if caught {
			seq, err = read(ctx, f.replica)
			if current(seq, err) {
				f.metrics.served.WithLabelValues(ServedByReplica).Inc()
				return Served{By: ServedByReplica, Seq: seq}, err
			}
		}
		if werr != nil {
			reason = "replica_error"
		}
	}
	f.metrics.fallbacks.WithLabelValues(reason).Inc()
	if f.master == nil {
		msg := fmt.Sprintf("the replica has not reached seq %d yet; retry shortly", minSeq)
		if reason == "replica_error" {
			msg = "the replica is unavailable"
		}
		if errors.As(err, &nf) {
			// Not found on a replica that is behind is no answer; kept as the cause it
			// would turn this 503 into a 404.
			err = nil
		}
		return Served{By: ServedByReplica, Seq: seq}, record.Unavailable(msg, err)
	}
	seq, err = read(ctx, f.master)
	if err != nil && !errors.As(err, &nf) {
		return Served{By: ServedByMaster}, err
	}
	f.metrics.served.WithLabelValues(ServedByMaster).Inc()
	return Served{By: ServedByMaster, Seq: seq}, err
}

// waitFor polls the replica's seq until it reaches minSeq or READ_MAX_WAIT passes.
// Replication on a healthy link takes well under a millisecond, so the first polls
// come quickly and back off from there.
func (f *Function) waitFor(ctx context.Context, minSeq int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ReadMaxWait)
	defer cancel()
	pause := 100 * time.Microsecond
	for {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, nil
		case <-t.C:
		}
		seq, err := f.replica.Seq(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, err
		}
		if seq >= minSeq {
			return true, nil
		}
		if pause < 10*time.Millisecond {
			pause *= 2
		}
	}
}
