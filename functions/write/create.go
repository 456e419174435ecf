package write

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Answer is a stored record as the write side returns it.
type Answer struct {
	ID string
	// Doc is the record's JSON document as stored, as the read side serves it.
	Doc []byte
	// Replicated is set only when WRITE_REPLICAS > 0.
	Replicated *bool
	// Token reads the record (joined with the token the client sent, if any).
	Token store.Token
}

// JSON is the answer's body: the record's document with "replicated" (when set) and
// "token" added at its end.
func (a Answer) JSON() []byte { return a.appendJSON(a.Token.String(), "") }

// appendJSON is JSON with token, the answer's token as a string, and then tail.
func (a Answer) appendJSON(token, tail string) []byte {
	d := a.Doc
	b := make([]byte, 0, len(d)+len(token)+len(tail)+40)
	b = append(b, d[:len(d)-1]...) // the document without its closing brace
	if a.Replicated != nil {
		b = append(b, `,"replicated":`...)
		b = strconv.AppendBool(b, *a.Replicated)
	}
	b = append(b, `,"token":"`...)
	b = append(b, token...) // digits, letters, ':', '.' and ',': no escaping
	return append(append(b, `"}`...), tail...)
}

// Create validates in and stores it under claim ("" for none); seen is the newest
// token the client holds (nil for none), which the answer's token joins. created is
// false when the claim was already held; the answer then carries the first record.
func (f *Function) Create(ctx context.Context, in record.Create, claim store.Claim, seen store.Token) (ans Answer, created bool, err error) {
	in, err = f.validator.Check(in)
	if err != nil {
		return Answer{}, false, err
	}
	if err := f.guard.check(); err != nil {
		return Answer{}, false, err
	}
	// The whole create, WAIT included, has a deadline: no request holds a Redis
	// connection longer than it may take itself. It allows two WAITs: after a Redis
	// restart the first script call finds the script cache empty, and its WAIT has
	// already waited when the script is loaded and sent again.
	ctx, cancel := context.WithTimeout(ctx, 2*f.cfg.WriteWaitTimeout+store.CallSlack)
	defer cancel()
	res, err := f.store.Create(ctx, store.NewRecord{
		Tag: newID(), Type: in.Type, Text: in.Text, Claim: claim, ClaimTTL: f.cfg.IdempotencyTTL,
	}, f.cfg.WriteReplicas, f.cfg.WriteWaitTimeout)
	f.guard.note(err)
	if err != nil {
		return Answer{}, false, err
	}
	ans = Answer{ID: res.ID, Doc: res.Doc, Token: seen.Join(store.Token{res.At})}
	if !res.New {
		f.metrics.replays.Inc()
		f.log.Info("create replayed", "id", res.ID, "seq", res.Seq)
		return ans, false, nil
	}
	f.createdOf(in.Type).Inc()
	if f.relay != nil {
		f.relay.notify()
	}
	// The line api.md promises for every stored record, with typed attributes: no
	// value is boxed on the way to the handler.
	attrs := [6]slog.Attr{slog.String("id", res.ID), slog.Int64("seq", res.Seq), slog.String("type", in.Type), slog.Int("bytes", len(in.Text))}
	n := 4
	if f.cfg.WriteReplicas > 0 {
		ok := res.Acked >= f.cfg.WriteReplicas
		ans.Replicated = &ok
		if !ok {
			f.metrics.unreplicated.Inc()
		}
		attrs[4], attrs[5] = slog.Bool("replicated", ok), slog.Int("acked", res.Acked)
		n = 6
	}
	f.logCreated(ctx, attrs[:n])
	return ans, true, nil
}

// logCreated writes the line of a stored record straight to the logger's handler:
// the Logger's own methods walk the stack for the caller's position on every line
// (runtime.Callers), which the JSON lines never show.
func (f *Function) logCreated(ctx context.Context, attrs []slog.Attr) {
	h := f.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "record created", 0)
	r.AddAttrs(attrs...)
	h.Handle(ctx, r)
}

// createdOf is the counter of records created of type typ, resolved once per type
// (resolving a label hashes it under the vector's lock).
func (f *Function) createdOf(typ string) prometheus.Counter {
	if c, ok := f.metrics.createdByType.Load(typ); ok {
		return c.(prometheus.Counter)
	}
	c := f.metrics.created.WithLabelValues(typ)
	f.metrics.createdByType.Store(typ, c)
	return c
}
