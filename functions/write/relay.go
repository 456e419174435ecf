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
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
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
	cfg       Config // the outbox's settings; WRITE_REPLICAS: publish only what that many replicas have
	source    string
	overrides map[string]string
	owner     string // this instance, as leases name it
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
	return &relay{
		log: log.With("component", "outbox"), store: st, cfg: cfg, source: source, overrides: overrides,
		owner: rand.Text(), metrics: m,
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
				if at.Before(next) {
					next = at
				}
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

// drain takes one batch of partition p and publishes it, in order, and reports
// whether it published anything.
func (r *relay) drain(ctx context.Context, p int) bool {
	taken := time.Now()
	b, err := r.store.Take(ctx, p, r.owner, r.cfg.Lease, batch, r.cfg.WriteReplicas, r.cfg.WriteWaitTimeout)
	if err != nil {
		if ctx.Err() == nil {
			// Logged once for each reason: a cause that lasts (a refused command, Redis
			// down) fails the same way at every retry, each second, and would bury the log.
			if msg := err.Error(); msg != r.failing[p] {
				r.failing[p] = msg
				r.log.Warn("cannot read the outbox; trying again every second", "partition", p, "err", err)
			}
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
	if r.cfg.WriteReplicas > 0 && b.Acked < r.cfg.WriteReplicas {
		// Published now, a record a failover loses would be an event of nothing.
		r.settle(p, nil, b.Entries, nil, "")
		r.retryAt[p] = time.Now().Add(r.cfg.WriteWaitTimeout)
		return false
	}
	n, reason, err := r.publish(ctx, b.Entries, taken)
	published, untried := b.Entries[:n], b.Entries[n:]
	if err == nil || ctx.Err() != nil {
		// All sent, the lease near its end, or stopping: the rest stays for the next take.
		r.settle(p, published, untried, nil, "")
		return n > 0
	}
	e := untried[0]
	r.metrics.failures.WithLabelValues(reason).Inc()
	switch {
	case reason == sinkUnavailable:
		// Not this event's fault: it does not count toward its attempts.
		r.settle(p, published, untried, nil, "")
		r.backoff(p, 0, err)
	case e.Deliveries >= r.cfg.Attempts:
		r.metrics.deadLetters.Inc()
		r.log.Error("event refused too often: moved to the dead-letter stream", "id", e.Record, "attempts", e.Deliveries, "err", err)
		r.settle(p, published, untried[1:], untried[:1], err.Error())
		return true
	default:
		r.settle(p, published, untried[1:], nil, "")
		r.backoff(p, e.Deliveries, err)
	}
	return n > 0
}

// publish sends entries in order until one fails, or until the lease would not
// outlast another send, and returns how many it sent and, if one failed, why.
func (r *relay) publish(ctx context.Context, entries []store.Entry, taken time.Time) (int, string, error) {
	for i, e := range entries {
		if time.Since(taken)+r.cfg.SendTimeout > r.cfg.Lease*3/4 {
			// The lease must outlast the batch: settle what is done and take again.
			return i, "", nil
		}
		if reason, err := r.send(ctx, e); err != nil {
			return i, reason, err
		}
		r.metrics.published.Inc()
		if e.Deliveries > 1 {
			r.metrics.redelivered.Inc()
		}
	}
	return len(entries), "", nil
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
	r.setPending(p, n)
}

// backoff waits before partition p is taken again: 0.5 s doubling with each delivery
// of the event that failed, at most 8 s (0.5 s doubled 4 times).
func (r *relay) backoff(p, deliveries int, err error) {
	d := 500 * time.Millisecond << min(max(deliveries-1, 0), 4)
	r.retryAt[p] = time.Now().Add(d)
	r.log.Warn("cannot publish to K_SINK; trying again", "partition", p, "in", d.String(), "err", err)
}

// gauge updates the pending and oldest-age metrics from a batch.
func (r *relay) gauge(p int, b store.Batch) {
	total := r.setPending(p, b.Pending)
	if len(b.Entries) > 0 {
		r.metrics.oldest.Set(time.Since(b.Entries[0].Created).Seconds())
	} else if total == 0 {
		r.metrics.oldest.Set(0)
	}
}

// setPending records that partition p holds n entries, as last seen, and sets the
// pending gauge to the total, which it returns.
func (r *relay) setPending(p int, n int64) (total int64) {
	r.pending[p] = n
	for _, n := range r.pending {
		total += n
	}
	r.metrics.pending.Set(float64(total))
	return total
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

// sinkUnavailable is the reason of a send that failed because the sink cannot take
// events now, which is waited for and does not count toward OUTBOX_ATTEMPTS.
const sinkUnavailable = "unavailable"

// send posts e as a binary-mode CloudEvent to the sink. A failure comes with its
// reason, as cqrs_outbox_send_failures_total labels it: sinkUnavailable, timeout or
// refused.
func (r *relay) send(ctx context.Context, e store.Entry) (reason string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.Sink, bytes.NewReader(e.Doc))
	if err != nil {
		return "refused", err
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
			return "timeout", fmt.Errorf("no answer within OUTBOX_SEND_TIMEOUT (%s): %w", r.cfg.SendTimeout, err)
		}
		return sinkUnavailable, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return "", nil
	case c == http.StatusTooManyRequests || c == http.StatusBadGateway || c == http.StatusServiceUnavailable || c == http.StatusGatewayTimeout:
		return sinkUnavailable, fmt.Errorf("the sink answered %s", resp.Status)
	default:
		return "refused", fmt.Errorf("the sink refused the event: %s", resp.Status)
	}
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
	for _, k := range slices.Sorted(maps.Keys(o.Extensions)) {
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

// extensionName reports whether k may name an extension of the events sent: a
// CloudEvents attribute name of at most 20 characters that is no attribute of the
// event itself.
func extensionName(k string) bool {
	switch k {
	case "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data":
		return false
	}
	return len(k) <= 20 && cloudevent.IsAttributeName(k)
}
