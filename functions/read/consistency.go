package read

import (
	"context"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Served says which Redis answered and how far it had got.
type Served struct {
	By string // ServedByReplica or ServedByMaster; "" when no Redis answered
	// Seq is the seq of the store's one partition on the Redis that answered
	// (X-Replica-Seq, for clients that predate tokens); HasSeq is false for a store
	// of several partitions, which has no one seq.
	Seq    int64
	HasSeq bool
	// Token is where the answer's partitions had got, joined with the request's token.
	Token store.Token
}

// outcome is what one read got from one Redis: whether it could serve the read, and
// where its partitions had got.
type outcome struct {
	status store.Status
	at     store.Token
	seq    int64 // partition 0's seq
}

func pageOutcome(p store.DocPage) outcome {
	// The worst partition decides what to do, and store.Status rises with what a
	// partition asks: one behind is waited for, one of another history needs the
	// master's word, one moving is asked again.
	o := outcome{status: store.Served, at: p.At}
	for _, s := range p.Status {
		o.status = max(o.status, s)
	}
	if pos, ok := p.At.At(0); ok {
		o.seq = pos.Seq
	}
	return o
}

func gotOutcome(g store.Got) outcome {
	o := outcome{status: g.Status, seq: g.At.Seq}
	if g.At.Epoch != "" {
		o.at = store.Token{g.At}
	}
	return o
}

// Reasons the replica could not serve a query, as cqrs_read_fallbacks_total counts them.
const (
	reasonLag  = "lag"          // behind the token or minSeq after READ_MAX_WAIT
	reasonDown = "replica_down" // unreachable, loading, or cut off from the master
	reasonSlow = "replica_slow" // timed out or busy
)

// consistent runs read against the replica and accepts its answer once the replica
// has what need asks (the token's epoch and position, or minSeq). A replica that is
// behind, or holds another history, is waited for, polling its positions, for at
// most READ_MAX_WAIT in all, whatever need says. Then, or when the replica is down or
// does not answer in time, the master answers if it is the fallback
// (READ_FALLBACK=master), or the read gets 503. A search that timed out on the
// replica is the exception: it may be what keeps the replica busy, and the same work
// on the master would slow the writes too, so it gets 503 and is never run there.
// A need that the master itself cannot meet never comes: a token of another history
// (the store was reset, or failed over to a replica that had not its writes) is
// refused as a reset, and a position beyond the master's newest as no position of
// this store, at once, before any wait.
func (f *Function) consistent(parent context.Context, need store.Need, search bool, read func(context.Context, *store.Store) (outcome, error)) (Served, error) {
	ctx, cancel := context.WithTimeout(parent, f.cfg.ReadMaxWait+store.CallSlack)
	defer cancel()
	waitUntil := time.Now().Add(f.cfg.ReadMaxWait)
	out, err := read(ctx, f.replica)
	if err == nil && out.status == store.Served {
		return f.served(ServedByReplica, out, need), nil
	}
	reason := reasonLag
	if err == nil && f.master != nil {
		// Before waiting: what the master has not got either never comes.
		if ps, merr := f.master.Positions(ctx); merr == nil {
			if err := missing(need, ps); err != nil {
				return f.at(ServedByMaster, ps[0].Seq), err
			}
		}
	}
	if err == nil {
		start := time.Now()
		var caught bool
		caught, err = f.waitFor(ctx, need, waitUntil)
		f.metrics.waits.Observe(time.Since(start).Seconds())
		if caught {
			out, err = read(ctx, f.replica)
			if err == nil && out.status == store.Served {
				return f.served(ServedByReplica, out, need), nil
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
		if err != nil {
			// No Redis answered: the answer says nothing of who served it.
			return Served{}, fail.Unavailable("the replica is unavailable", err)
		}
		return f.at(ServedByReplica, out.seq), fail.Unavailable("the replica has not caught up with this read's token or minSeq yet; retry shortly", nil)
	}
	// The master gets a time of its own: the replica may have used up the request's.
	mctx, mcancel := context.WithTimeout(parent, store.CallSlack)
	defer mcancel()
	out, err = read(mctx, f.master)
	if err != nil {
		return Served{}, err
	}
	switch out.status {
	case store.Served:
		return f.served(ServedByMaster, out, need), nil
	case store.OtherHistory:
		return f.at(ServedByMaster, out.seq), resetError(need)
	case store.Behind:
		return f.at(ServedByMaster, out.seq), beyondError(need, out.seq)
	}
	return Served{}, fail.Unavailable("the store is moving between Redis nodes; retry shortly", nil)
}

// served is the Served of an answer by the Redis by, counted.
func (f *Function) served(by string, out outcome, need store.Need) Served {
	f.metrics.served.WithLabelValues(by).Inc()
	s := f.at(by, out.seq)
	s.Token = need.Token.Join(out.at)
	return s
}

// at says that the Redis by answered at seq (partition 0's).
func (f *Function) at(by string, seq int64) Served {
	if f.parts > 1 || f.clustered {
		return Served{By: by}
	}
	return Served{By: by, Seq: seq, HasSeq: true}
}

// waitFor polls the replica's positions until they meet need or until passes.
// Replication on a healthy link takes well under a millisecond, so the first polls
// come quickly and back off from there.
func (f *Function) waitFor(ctx context.Context, need store.Need, until time.Time) (bool, error) {
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
		ps, err := f.replica.Positions(ctx)
		if err != nil {
			// The call carries the wait's deadline: failing at it is the wait ending,
			// whether or not the context has noticed yet.
			if ctx.Err() != nil || !time.Now().Before(until) {
				return false, nil
			}
			return false, err
		}
		if missing(need, ps) == nil {
			return true, nil
		}
		if pause < 10*time.Millisecond {
			pause *= 2
		}
	}
}

// missing is the refusal of need by a Redis at positions ps, or nil when they have
// what need asks of every partition. From the master, the refusal is final: what
// the master has not got never comes.
func missing(need store.Need, ps []store.Position) error {
	for _, p := range ps {
		epoch, seq := need.Want(p.Part)
		switch {
		case epoch != "" && p.Epoch != epoch:
			return resetError(need)
		case p.Seq < seq:
			return beyondError(need, p.Seq)
		}
	}
	return nil
}

// resetError is the refusal of a token or cursor of a history the store no longer
// has: it was emptied and written again, or failed over to a replica without it.
func resetError(need store.Need) error {
	field, what := "cursor", "the cursor"
	if len(need.Token) > 0 {
		field, what = "token", "the token"
	}
	return &fail.Error{Code: fail.ERESET, Field: field,
		Message: what + " comes from a history of the store that is gone (the store was emptied, or failed over to a replica without those writes): drop it and read afresh"}
}

// beyondError is the refusal of a position the master has not handed out.
func beyondError(need store.Need, newest int64) error {
	if len(need.Token) > 0 {
		return fail.Invalidf("token", "the token is beyond the newest record of this store (%d): a write lost in a failover; read without it", newest)
	}
	return fail.Invalidf("minSeq",
		"minSeq %d is beyond the newest seq of this store (%d): it comes from another store or a write lost in a failover; read without it", need.MinSeq, newest)
}
