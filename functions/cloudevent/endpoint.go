// Package cloudevent is the CloudEvents side of both functions: it receives one event
// in binary or structured mode as a Knative Broker delivers it, hands it to the
// function, and answers with the function's reply event in the same mode, or with
// the status Knative's data plane expects (400: do not retry, 503: retry).
package cloudevent

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// Handler turns a valid event of the endpoint's type into the reply event. outcome
// labels the event in cqrs_events_total. Headers set on h go out with the reply.
type Handler func(ctx context.Context, h http.Header, ev *Event) (out *event.Event, outcome string, err error)

// Endpoint serves events on POST /: one type of the function's own, and any others
// added with Also.
type Endpoint struct {
	hint     string
	log      *slog.Logger
	total    *prometheus.CounterVec
	handlers map[string]Handler
	types    []string // handlers' keys, the endpoint's own first
}

// NewCounter returns the cqrs_events_total counter an Endpoint counts into.
func NewCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cqrs_events_total", Help: "CloudEvents received on POST /, by event type and outcome.",
	}, []string{"type", "outcome"})
}

// NewEndpoint returns an endpoint for events of type typ. hint tells senders of
// plain requests where those go instead.
func NewEndpoint(typ, hint string, log *slog.Logger, total *prometheus.CounterVec, handle Handler) *Endpoint {
	return &Endpoint{hint: hint, log: log, total: total, handlers: map[string]Handler{typ: handle}, types: []string{typ}}
}

// Also makes the endpoint take events of type typ too, handled by handle. A handler
// that returns no event answers 202 Accepted with no body.
func (e *Endpoint) Also(typ string, handle Handler) *Endpoint {
	e.handlers[typ] = handle
	e.types = append(e.types, typ)
	return e
}

// otherType is the type label of events of any type but the endpoint's, so that
// senders cannot grow the label set.
const otherType = "other"

// ServeHTTP receives, handles and answers one event.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		e.total.WithLabelValues(otherType, fail.EMETHOD).Inc()
		serve.Error(w, r, e.log, serve.MethodNotAllowed(r.Method, http.MethodPost))
		return
	}
	ev, structured, err := e.receive(w, r)
	if err == nil {
		var out *event.Event
		var outcome string
		out, outcome, err = e.handlers[ev.Type()](r.Context(), w.Header(), ev)
		if err == nil {
			e.total.WithLabelValues(ev.Type(), outcome).Inc()
			e.write(w, r, out, structured)
			return
		}
	}
	label := otherType
	if ev != nil && e.handlers[ev.Type()] != nil {
		label = ev.Type()
	}
	e.total.WithLabelValues(label, outcome(err)).Inc()
	if c := fail.Code(err); c != fail.EUNAVAILABLE && c != fail.EINTERNAL {
		attrs := []any{"err", err}
		if ev != nil {
			attrs = append(attrs, "type", ev.Type(), "source", ev.Source(), "id", ev.ID())
		}
		e.log.Info("event rejected", attrs...)
	}
	serve.Error(w, r, e.log, err)
}

// write sends out as the HTTP 200 answer, in binary mode or, when the request was
// structured, in structured mode.
func (e *Endpoint) write(w http.ResponseWriter, r *http.Request, out *event.Event, structured bool) {
	if out == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ctx := binding.WithForceBinary(r.Context())
	if structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	if err := cehttp.WriteResponseWriter(ctx, (*binding.EventMessage)(out), http.StatusOK, w); err != nil {
		// The status line is already out; all that is left is to say so in the log.
		e.log.Warn("cannot write reply event", "err", err)
	}
}
