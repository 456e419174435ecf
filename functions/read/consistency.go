package read

import (
	"context"
	"fmt"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Served says which Redis answered and how far it had got.
type Served struct {
	By  string
	Seq int64
}

// Reasons the replica could not serve a query, as cqrs_read_fallbacks_total counts them.
const (
	reasonLag  = "lag"          // behind minSeq after READ_MAX_WAIT
	reasonDown = "replica_down" // unreachable, loading, or cut off from the master
	reasonSlow = "replica_slow" // timed out or busy
)

// consistent runs read against the replica and accepts its answer once the replica
// has applied minSeq. A replica that is behind is waited for, polling its seq, for at
// most READ_MAX_WAIT in all, whatever minSeq says. Then, or when the replica is down
// or does not answer in time, the master answers if it is the fallback
// (READ_FALLBACK=master), or the read gets 503. A search that timed out on the
// replica is the exception: it may be what keeps the replica busy, and the same work
// on the master would slow the writes too, so it gets 503 and is never run there.
// A minSeq beyond the master's own newest seq is no seq of this store (a store
// started afresh, or a write lost in a failover), and is refused at once, before any
// wait (one GET of the master's seq for a read the replica could not serve yet).
func (f *Function) consistent(parent context.Context, minSeq int64, search bool, read func(context.Context, *store.Store) (int64, error)) (Served, error) {
	ctx, cancel := context.WithTimeout(parent, f.cfg.ReadMaxWait+store.CallSlack)
	defer cancel()
	waitUntil := time.Now().Add(f.cfg.ReadMaxWait)
	seq, err := read(ctx, f.replica)
	if err == nil && seq >= minSeq {
		f.metrics.served.WithLabelValues(ServedByReplica).Inc()
		return Served{By: ServedByReplica, Seq: seq}, nil
	}
	reason := reasonLag
	if err == nil && f.master != nil {
		// Before waiting: a seq the master has not handed out either never comes.
		if mseq, merr := f.master.Seq(ctx); merr == nil && mseq < minSeq {
			return Served{By: ServedByMaster, Seq: mseq}, beyondStore(minSeq, mseq)
		}
	}
	if err == nil {
		start := time.Now()
		var caught bool
		caught, err = f.waitFor(ctx, minSeq, waitUntil)
		f.metrics.waits.Observe(time.Since(start).Seconds())
		if caught {
			seq, err = read(ctx, f.replica)
			if err == nil && seq >= minSeq {
				f.metrics.served.WithLabelValues(ServedByReplica).Inc()
				return Served{By: ServedByReplica, Seq: seq}, nil
			}
		}
	}
	if err != nil {
		reason = reasonDown
		if !store.Down(err) {
			reason = reasonSlow
			if search {
				f.metrics.fallbacks.WithLabelValues(reasonSlow).Inc()
				f.log.Warn("search timed out on the replica; not running it on the master", "err", err)
				return Served{}, err
			}
		}
		f.log.Warn("replica failed", "reason", reason, "err", err)
	}
	f.metrics.fallbacks.WithLabelValues(reason).Inc()
	if f.master == nil {
		msg := fmt.Sprintf("the replica has not reached seq %d yet; retry shortly", minSeq)
		if reason != reasonLag {
			msg = "the replica is unavailable"
		}
		return Served{By: ServedByReplica, Seq: seq}, fail.Unavailable(msg, err)
	}
	// The master gets a time of its own: the replica may have used up the request's.
	mctx, mcancel := context.WithTimeout(parent, store.CallSlack)
	defer mcancel()
	seq, err = read(mctx, f.master)
	if err != nil {
		return Served{}, err
	}
	if seq < minSeq {
		return Served{By: ServedByMaster, Seq: seq}, beyondStore(minSeq, seq)
	}
	f.metrics.served.WithLabelValues(ServedByMaster).Inc()
	return Served{By: ServedByMaster, Seq: seq}, nil
}

// waitFor polls the replica's seq until it reaches minSeq or until passes.
// Replication on a healthy link takes well under a millisecond, so the first polls
// come quickly and back off from there.
func (f *Function) waitFor(ctx context.Context, minSeq int64, until time.Time) (bool, error) {
	ctx, cancel := context.WithDeadline(ctx, until)
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
			// The call carries the wait's deadline: failing at it is the wait ending,
			// whether or not the context has noticed yet.
			if ctx.Err() != nil || !time.Now().Before(until) {
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

// beyondStore is the error for a minSeq the master has not handed out.
func beyondStore(minSeq, newest int64) error {
	return fail.Invalidf("minSeq",
		"minSeq %d is beyond the newest seq of this store (%d): it comes from another store or a write lost in a failover; read without it", minSeq, newest)
}
