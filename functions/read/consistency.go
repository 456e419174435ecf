package read

import (
	"context"
	"fmt"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Served says which Redis answered and how far it had got.
type Served struct {
	By  string
	Seq int64
}

// consistent runs read against the replica and accepts its answer once the replica
// has applied minSeq. While it has not, it waits (polling its seq) up to
// READ_MAX_WAIT; then, or when the replica fails, it asks the master if that is the
// fallback, or gives up with 503.
func (f *Function) consistent(ctx context.Context, minSeq int64, read func(context.Context, *store.Store) (int64, error)) (Served, error) {
	seq, err := read(ctx, f.replica)
	if err == nil && seq >= minSeq {
		f.metrics.served.WithLabelValues(ServedByReplica).Inc()
		return Served{By: ServedByReplica, Seq: seq}, nil
	}
	reason := "lag"
	if err != nil {
		reason = "replica_error"
		f.log.Warn("replica failed", "err", err)
	} else {
		start := time.Now()
		caught, werr := f.waitFor(ctx, minSeq)
		f.metrics.waits.Observe(time.Since(start).Seconds())
		if caught {
			seq, err = read(ctx, f.replica)
			if err == nil && seq >= minSeq {
				f.metrics.served.WithLabelValues(ServedByReplica).Inc()
				return Served{By: ServedByReplica, Seq: seq}, nil
			}
		}
		if werr != nil || err != nil {
			reason = "replica_error"
		}
	}
	f.metrics.fallbacks.WithLabelValues(reason).Inc()
	if f.master == nil {
		msg := fmt.Sprintf("the replica has not reached seq %d yet; retry shortly", minSeq)
		if reason == "replica_error" {
			msg = "the replica is unavailable"
		}
		return Served{By: ServedByReplica, Seq: seq}, record.Unavailable(msg, err)
	}
	seq, err = read(ctx, f.master)
	if err != nil {
		return Served{By: ServedByMaster}, err
	}
	f.metrics.served.WithLabelValues(ServedByMaster).Inc()
	return Served{By: ServedByMaster, Seq: seq}, nil
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
