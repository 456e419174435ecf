package write

import (
	"context"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// DefaultEventSource is the source of reply events when K_SERVICE is not set.
const DefaultEventSource = "/cqrs-write"

// EventPing is the type of a Knative PingSource's events. One, every few minutes,
// wakes a write function scaled to zero so that its relay publishes what the outbox
// still holds (knative/outbox.yaml).
const EventPing = "dev.knative.sources.ping"

// Extensions of a dev.cqrs.record.created event.
const (
	// ExtReplayed is true when the event had been delivered before and the record is
	// the one stored then.
	ExtReplayed = "replayed"
	// ExtReplicated is set only under WRITE_REPLICAS > 0: false when fewer replicas
	// than that confirmed the write in time (the record is stored on the master, but
	// a failover now could lose it). It carries what the 202 and X-Replicated carry
	// over HTTP, for a sender that only sees the reply event.
	ExtReplicated = "replicated"
)

// handleCreateEvent stores the record a dev.cqrs.record.create event describes under
// a claim on the event's source and id, taken in the same atomic step as the write,
// so a redelivered event stores nothing new and gets the first record back.
func (f *Function) handleCreateEvent(ctx context.Context, _ http.Header, ev *cloudevent.Event) (*event.Event, string, error) {
	var in record.Create
	if err := createData.Decode(ev.Data(), &in); err != nil {
		return nil, "", err
	}
	ans, created, err := f.Create(ctx, in, store.EventClaim(ev.SentSource, ev.SentID), nil)
	if fail.Code(err) == fail.ECONFLICT {
		// A redelivery carries the same data; different data under the same source
		// and id is a sender's bug, and retrying it cannot help.
		return nil, "", &fail.Error{Code: fail.ECONFLICT, Field: "id", Err: err,
			Message: "an event with this source and id was already stored with different data; give new events new ids"}
	}
	if err != nil {
		return nil, "", cloudevent.DataError(err)
	}
	out := cloudevent.NewReply(f.source, record.EventCreated, f.now(), ans.JSON())
	// The id names the record, so a consumer that drops events it has seen sees each
	// record once, however often its create was delivered.
	out.SetID(ans.ID)
	out.SetSubject(ans.ID)
	out.SetExtension(record.TokenExtension, ans.Token.String())
	out.SetExtension(ExtReplayed, !created)
	if ans.Replicated != nil {
		out.SetExtension(ExtReplicated, *ans.Replicated)
	}
	if !created {
		return out, "replayed", nil
	}
	return out, "created", nil
}

// handlePing answers a PingSource's event at once, so that it keeps no instance from
// scaling to zero: the instance it woke drains the outbox meanwhile, as every
// instance does from its start.
func (f *Function) handlePing(context.Context, http.Header, *cloudevent.Event) (*event.Event, string, error) {
	if f.relay == nil {
		return nil, "no_outbox", nil
	}
	f.relay.notify()
	return nil, "woken", nil
}
