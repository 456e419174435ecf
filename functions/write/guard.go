package write

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// guard keeps creates from a Redis that cannot keep what they write: one whose
// maxmemory-policy may evict keys (claims, indexes, documents must never go, and a
// claim evicted turns a retry into a second record) is refused outright, and a full
// one (maxmemory under noeviction) refuses writes itself, which guard reports. Both
// answer 503 at once; readiness stays ready, since a fast, explained 503 beats
// requests queued in front of a pod that is not ready. A metric and a log line say
// why whenever the state changes.
type guard struct {
	log      *slog.Logger
	store    *store.Store
	refusing *prometheus.GaugeVec // 1 while creates are refused, by reason
	memory   prometheus.Gauge     // used_memory / maxmemory, 0 without maxmemory

	mu       sync.Mutex
	evicting string // the evicting policy while refusing for it, else ""
	full     bool   // the last create was refused for maxmemory
}

// guardPeriod is how often guard reads the Redis' limits; a policy changed on a
// running Redis is noticed within it.
const guardPeriod = 10 * time.Second

func newGuardMetrics() (*prometheus.GaugeVec, prometheus.Gauge) {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cqrs_store_refusing_writes", Help: "1 while creates are refused, by reason: eviction_policy (maxmemory-policy may evict) or store_full (maxmemory reached).",
		}, []string{"reason"}), prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cqrs_store_memory_used_ratio", Help: "used_memory / maxmemory of the Redis master; 0 when maxmemory is not set.",
		})
}

// watch reads the limits every guardPeriod until ctx ends.
func (g *guard) watch(ctx context.Context) {
	t := time.NewTicker(guardPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.update(ctx)
		}
	}
}

// update reads the Redis' limits; while it cannot, the last state stands.
func (g *guard) update(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l, err := g.store.Limits(ctx)
	if err != nil {
		return
	}
	g.memory.Set(l.Ratio())
	g.mu.Lock()
	defer g.mu.Unlock()
	switch evicting := l.Evicts(); {
	case evicting && g.evicting != l.Policy:
		g.evicting = l.Policy
		g.refusing.WithLabelValues(fail.EEVICTING).Set(1)
		g.log.Error("refusing creates: Redis may evict the store's keys; set maxmemory-policy noeviction",
			"maxmemory_policy", l.Policy, "maxmemory", l.MaxMemory)
	case !evicting && g.evicting != "":
		g.evicting = ""
		g.refusing.WithLabelValues(fail.EEVICTING).Set(0)
		g.log.Info("accepting creates again: maxmemory-policy no longer evicts", "maxmemory_policy", l.Policy)
	}
	if g.full && l.MaxMemory > 0 && l.UsedMemory < l.MaxMemory {
		g.setFull(false, nil)
	}
}

// check returns the refusal of a create while the policy may evict.
func (g *guard) check() error {
	g.mu.Lock()
	policy := g.evicting
	g.mu.Unlock()
	if policy == "" {
		return nil
	}
	return &fail.Error{Code: fail.EEVICTING, Field: "maxmemory-policy",
		Message: "creates are refused: the Redis master's maxmemory-policy is " + policy +
			", which may evict idempotency claims and indexes; set maxmemory-policy noeviction"}
}

// note takes the outcome of a create: a refusal for maxmemory starts the full state,
// anything else ends it.
func (g *guard) note(err error) {
	full := fail.Code(err) == fail.EFULL
	g.mu.Lock()
	defer g.mu.Unlock()
	if full != g.full {
		g.setFull(full, err)
	}
}

// setFull changes the full state; g.mu is held.
func (g *guard) setFull(full bool, err error) {
	g.full = full
	if full {
		g.refusing.WithLabelValues(fail.EFULL).Set(1)
		g.log.Error("refusing creates: the Redis master is at its maxmemory", "err", err)
		return
	}
	g.refusing.WithLabelValues(fail.EFULL).Set(0)
	g.log.Info("accepting creates again: the Redis master has room")
}
