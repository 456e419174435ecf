package write

import (
	"context"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Answer is a stored record as the write side returns it.
type Answer struct {
	record.Record
	// Replicated is set only when WRITE_REPLICAS > 0.
	Replicated *bool `json:"replicated,omitempty"`
}

// Create validates in and stores it under claim ("" for none). created is false when
// the claim was already held; the answer then carries the first record.
func (f *Function) Create(ctx context.Context, in record.Create, claim string) (ans Answer, created bool, err error) {
	in, err = f.validator.Check(in)
	if err != nil {
		return Answer{}, false, err
	}
	// The whole create, WAIT included, has a deadline: no request holds a Redis
	// connection longer than it may take itself. It allows two WAITs: after a Redis
	// restart the first script call finds the script cache empty, and its WAIT has
	// already waited when the script is loaded and sent again.
	ctx, cancel := context.WithTimeout(ctx, 2*f.cfg.WriteWaitTimeout+store.CallSlack)
	defer cancel()
	res, err := f.store.Create(ctx, store.NewRecord{
		ID: newID(), Type: in.Type, Text: in.Text, CreatedAt: f.now(),
		Claim: claim, ClaimTTL: f.cfg.IdempotencyTTL,
	}, f.cfg.WriteReplicas, f.cfg.WriteWaitTimeout)
	if err != nil {
		return Answer{}, false, err
	}
	ans = Answer{Record: res.Record}
	if !res.New {
		f.metrics.replays.Inc()
		f.log.Info("create replayed", "id", res.Record.ID, "seq", res.Record.Seq)
		return ans, false, nil
	}
	f.metrics.created.WithLabelValues(res.Record.Type).Inc()
	attrs := []any{"id", res.Record.ID, "seq", res.Record.Seq, "type", res.Record.Type, "bytes", len(res.Record.Text)}
	if f.cfg.WriteReplicas > 0 {
		ok := res.Acked >= f.cfg.WriteReplicas
		ans.Replicated = &ok
		if !ok {
			f.metrics.unreplicated.Inc()
		}
		attrs = append(attrs, "replicated", ok, "acked", res.Acked)
	}
	f.log.Info("record created", attrs...)
	return ans, true, nil
}
