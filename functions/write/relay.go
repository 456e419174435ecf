package write

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// relay publishes the outbox: every stored record, whatever door it came through,
// as a dev.cqrs.record.created CloudEvent to K_SINK. Every instance runs one; the
// one that holds a partition's lease publishes that partition, in seq order, and
// the others wait to take over when its lease runs out. Each event's id is the
// record id, stable, so a consumer drops the duplicates that a takeover can send.
//
// A sink that cannot be reached (refused, reset, 502, 503, 504, 429) is waited for,
// however long: nothing is dropped, the outbox grows, and creates are refused only at
// OUTBOX_MAX_PENDING. A sink that answers another error, or does not answer within
// OUTBOX_SEND_TIMEOUT, refuses that event: it is tried OUTBOX_ATTEMPTS times with
// backoff, then moved to the dead-letter stream, counted, and the outbox goes on.
type relay struct {
	log       *slog.Logger
	store     *store.Store
	cfg       Outbox
	source    string
	overrides map[string]string
	replicas  int           // WRITE_REPLICAS: publish only what that many replicas have
	wait      time.Duration // WRITE_WAIT_TIMEOUT
	owner     string        // this instance, as leases name it
	client    *http.Client
	wake      chan struct{}
	metrics   relayMetrics

	pending []int64     // per partition, as last seen
	retryAt []time.Time // per partition: when to take again after a failure
	failing []string    // per partition: the failure last logged, "" when reading
	statsAt time.Time   // when the gauges were last read from the store as a whole
}

// statsEvery is how often every relay, holding a lease or not, reads the whole
// outbox for its gauges.
const statsEvery = 10 * time.Second

// batch is how many entries a relay takes at once.
const batch = 32

type relayMetrics struct {
	pending     prometheus.Gauge
	oldest      prometheus.Gauge
	dead        prometheus.Gauge
	published   prometheus.Counter
	redelivered prometheus.Counter
	deadLetters prometheus.Counter
	failures    *prometheus.CounterVec
}

func newRelayMetrics() relayMetrics {
	return relayMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cqrs_outbox_pending", Help: "Records stored and not yet published."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cqrs_outbox_oldest_age_seconds", Help: "How long the oldest record not yet published has waited; 0 when none waits."}),
		dead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cqrs_outbox_dead_letters", Help: "Entries in the outbox's dead-letter streams."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_outbox_published_total", Help: "Events published from the outbox."}),
		redelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_outbox_redelivered_total", Help: "Events published again: an earlier relay had taken them and may have published them."}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_outbox_dead_lettered_total", Help: "Events moved to the dead-letter stream after OUTBOX_ATTEMPTS refusals."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_outbox_send_failures_total", Help: "Sends to K_SINK that failed, by reason: unavailable (waited for), refused or timeout (counted toward OUTBOX_ATTEMPTS)."},
			[]string{"reason"}),
	}
}

func (m relayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.pending, m.oldest, m.dead, m.published, m.redelivered, m.deadLetters, m.failures}
}

func newRelay(log *slog.Logger, st *store.Store, cfg Config, source string, m relayMetrics) *relay {
	overrides, _ := parseOverrides(cfg.Overrides) // checked with the configuration
	owner := rand.Text()
	return &relay{
		log: log.With("component", "outbox"), store: st, cfg: cfg.Outbox, source: source, overrides: overrides,
		replicas: cfg.WriteReplicas, wait: cfg.WriteWaitTimeout, owner: owner, metrics: m,
		client: &http.Client{Timeout: cfg.SendTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		wake:    make(chan struct{}, 1),
		pending: make([]int64, st.Partitions()),
		retryAt: make([]time.Time, st.Partitions()),
		failing: make([]string, st.Partitions()),
	}
}

// notify tells the relay that a record was stored; it never blocks.
func (r *relay) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run publishes until ctx ends, then gives its leases up. It starts at once, so
// every instance drains what is pending when it starts.
func (r *relay) run(ctx context.Context) {
	defer r.release()
	for ctx.Err() == nil {
		if time.Since(r.statsAt) >= statsEvery {
			r.stats(ctx)
		}
		busy := false
		next := time.Now().Add(r.cfg.PollEvery)
		for p := range r.store.Partitions() {
			if at := r.retryAt[p]; time.Now().Before(at) {
				next = minTime(next, at)
				continue
			}
			if r.drain(ctx, p) {
				busy = true
			}
		}
		if busy {
			continue
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// readFailed logs that partition p's outbox cannot be read, once for each reason:
// a cause that lasts (a refused command, Redis down) fails the same way at every
// retry, each second, and would bury the log.
func (r *relay) readFailed(p int, err error) {
	if msg := err.Error(); msg != r.failing[p] {
		r.failing[p] = msg
		r.log.Warn("cannot read the outbox; trying again every second", "partition", p, "err", err)
	}
}

// drain takes one batch of partition p and publishes it, in order, and reports
// whether it published anything.
func (r *relay) drain(ctx context.Context, p int) bool {
	taken := time.Now()
	b, err := r.store.Take(ctx, p, r.owner, r.cfg.Lease, batch, r.replicas, r.wait)
	if err != nil {
		if ctx.Err() == nil {
			r.readFailed(p, err)
			r.retryAt[p] = time.Now().Add(time.Second)
		}
		return false
	}
	if r.failing[p] != "" {
		r.failing[p] = ""
		r.log.Info("reading the outbox again", "partition", p)
	}
	if b.Held {
		// Another instance publishes this partition; take over when its lease ends.
		r.retryAt[p] = time.Now().Add(r.cfg.Lease / 2)
		return false
	}
	r.gauge(p, b)
	if len(b.Entries) == 0 {
		return false
	}
	if r.replicas > 0 && b.Acked < r.replicas {
		// Published now, a record a failover loses would be an event of nothing.
		r.settle(p, nil, b.Entries, nil, "")
		r.retryAt[p] = time.Now().Add(r.wait)
		return false
	}
	for i, e := range b.Entries {
		if time.Since(taken)+r.cfg.SendTimeout > r.cfg.Lease*3/4 {
			// The lease must outlast the batch: settle what is done and take again.
			r.settle(p, b.Entries[:i], b.Entries[i:], nil, "")
			return i > 0
		}
		err := r.send(ctx, e)
		if err == nil {
			r.metrics.published.Inc()
			if e.Deliveries > 1 {
				r.metrics.redelivered.Inc()
			}
			continue
		}
		var down unavailable
		switch {
		case ctx.Err() != nil:
			// Stopping: the entries stay for the next relay.
			r.settle(p, b.Entries[:i], b.Entries[i:], nil, "")
		case errors.As(err, &down):
			// Not this event's fault: it does not count toward its attempts.
			r.metrics.failures.WithLabelValues("unavailable").Inc()
			r.settle(p, b.Entries[:i], b.Entries[i:], nil, "")
			r.backoff(p, 0, err)
		case e.Deliveries >= r.cfg.Attempts:
			r.metrics.failures.WithLabelValues(failureReason(err)).Inc()
			r.metrics.deadLetters.Inc()
			r.log.Error("event refused too often: moved to the dead-letter stream", "id", e.Record, "attempts", e.Deliveries, "err", err)
			r.settle(p, b.Entries[:i], b.Entries[i+1:], []store.Entry{e}, err.Error())
			return true
		default:
			r.metrics.failures.WithLabelValues(failureReason(err)).Inc()
			r.settle(p, b.Entries[:i], b.Entries[i+1:], nil, "")
			r.backoff(p, e.Deliveries, err)
		}
		return i > 0
	}
	r.settle(p, b.Entries, nil, nil, "")
	return true
}

// settle records what became of a batch; if that fails, the entries are taken again
// (published ones too: their duplicates carry the same id).
func (r *relay) settle(p int, published, untried, dead []store.Entry, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := r.store.Settle(ctx, p, r.owner, r.cfg.Lease, published, untried, dead, reason)
	if err != nil {
		r.log.Warn("cannot settle outbox entries; they will be taken again", "partition", p, "err", err)
		return
	}
	r.pending[p] = n
	r.metrics.pending.Set(float64(sum(r.pending)))
}

// backoff waits before partition p is taken again: 0.5 s doubling with each delivery
// of the event that failed, at most 8 s.
func (r *relay) backoff(p, deliveries int, err error) {
	d := 500 * time.Millisecond
	for i := 1; i < deliveries && d < 8*time.Second; i++ {
		d *= 2
	}
	r.retryAt[p] = time.Now().Add(min(d, 8*time.Second))
	r.log.Warn("cannot publish to K_SINK; trying again", "partition", p, "in", d.String(), "err", err)
}

// gauge updates the pending and oldest-age metrics from a batch.
func (r *relay) gauge(p int, b store.Batch) {
	r.pending[p] = b.Pending
	r.metrics.pending.Set(float64(sum(r.pending)))
	if len(b.Entries) > 0 {
		r.metrics.oldest.Set(time.Since(b.Entries[0].Created).Seconds())
	} else if sum(r.pending) == 0 {
		r.metrics.oldest.Set(0)
	}
}

// stats sets the gauges from the whole outbox, whichever partitions this relay holds.
func (r *relay) stats(ctx context.Context) {
	r.statsAt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.store.Outbox(ctx)
	if err != nil {
		return
	}
	r.metrics.pending.Set(float64(st.Pending))
	r.metrics.dead.Set(float64(st.Dead))
	if st.Oldest.IsZero() {
		r.metrics.oldest.Set(0)
	} else {
		r.metrics.oldest.Set(time.Since(st.Oldest).Seconds())
	}
}

// release gives every lease up, so that another instance takes over at once.
func (r *relay) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for p := range r.store.Partitions() {
		r.store.Release(ctx, p, r.owner)
	}
}

// unavailable is a send that failed because the sink cannot take events now.
type unavailable struct{ err error }

func (u unavailable) Error() string { return u.err.Error() }

// send posts e as a binary-mode CloudEvent to the sink.
func (r *relay) send(ctx context.Context, e store.Entry) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.Sink, bytes.NewReader(e.Doc))
	if err != nil {
		return err
	}
	h := req.Header
	for k, v := range r.overrides {
		h.Set("Ce-"+k, v)
	}
	h["Ce-Specversion"] = []string{"1.0"}
	h["Ce-Id"] = []string{e.Record}
	h["Ce-Source"] = []string{r.source}
	h["Ce-Type"] = []string{record.EventCreated}
	h["Ce-Subject"] = []string{e.Record}
	h["Ce-Time"] = []string{e.Created.Format(time.RFC3339Nano)}
	h["Ce-"+record.TokenExtension] = []string{store.Token{e.At}.String()}
	h["Content-Type"] = []string{"application/json"}
	resp, err := r.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("no answer within OUTBOX_SEND_TIMEOUT (%s): %w", r.cfg.SendTimeout, err)
		}
		return unavailable{err}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusTooManyRequests || c == http.StatusBadGateway || c == http.StatusServiceUnavailable || c == http.StatusGatewayTimeout:
		return unavailable{fmt.Errorf("the sink answered %s", resp.Status)}
	default:
		return fmt.Errorf("the sink refused the event: %s", resp.Status)
	}
}

// failureReason labels a counted failure for cqrs_outbox_send_failures_total.
func failureReason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "refused"
}

// parseOverrides reads K_CE_OVERRIDES, {"extensions":{"name":"value",...}}, which a
// SinkBinding may set: extensions every event sent to the sink carries.
func parseOverrides(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var o struct {
		Extensions map[string]any `json:"extensions"`
	}
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return nil, fmt.Errorf("not the JSON {\"extensions\":{...}} Knative writes: %w", err)
	}
	out := make(map[string]string, len(o.Extensions))
	names := make([]string, 0, len(o.Extensions))
	for k := range o.Extensions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !extensionName(k) {
			return nil, fmt.Errorf("extension name %q is not 1 to 20 lower-case letters and digits", k)
		}
		switch v := o.Extensions[k].(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("extension %s: not a string, number or boolean", k)
		}
	}
	return out, nil
}

func extensionName(k string) bool {
	switch k {
	case "", "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data":
		return false // attributes of the event itself, not extensions
	}
	if len(k) > 20 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
