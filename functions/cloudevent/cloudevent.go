// Package cloudevent is the CloudEvents side of both functions: it receives one event
// in binary or structured mode as a Knative Broker delivers it, hands it to the
// function, and answers with the function's reply event in the same mode, or with
// the status Knative's data plane expects (400: do not retry, 503: retry).
package cloudevent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/reply"
)

// Handler turns a valid event of the endpoint's type into the reply event. outcome
// labels the event in cqrs_events_total. Headers set on h go out with the reply.
type Handler func(ctx context.Context, h http.Header, ev *event.Event) (out *event.Event, outcome string, err error)

// Endpoint serves one event type on POST /.
type Endpoint struct {
	typ    string
	hint   string
	log    *slog.Logger
	total  *prometheus.CounterVec
	handle Handler
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
	return &Endpoint{typ: typ, hint: hint, log: log, total: total, handle: handle}
}

// otherType is the type label of events of any type but the endpoint's, so that
// senders cannot grow the label set.
const otherType = "other"

// ServeHTTP receives, handles and answers one event.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		e.total.WithLabelValues(otherType, record.EMETHOD).Inc()
		reply.Error(w, r, e.log, reply.MethodNotAllowed(r.Method, http.MethodPost))
		return
	}
	ev, structured, err := e.receive(w, r)
	if err == nil {
		var out *event.Event
		var outcome string
		out, outcome, err = e.handle(r.Context(), w.Header(), ev)
		if err == nil {
			e.total.WithLabelValues(e.typ, outcome).Inc()
			e.write(w, r, out, structured)
			return
		}
	}
	label := otherType
	if ev != nil && ev.Type() == e.typ {
		label = e.typ
	}
	e.total.WithLabelValues(label, outcome(err)).Inc()
	if c := record.ErrorCode(err); c != record.EUNAVAILABLE && c != record.EINTERNAL {
		attrs := []any{"err", err}
		if ev != nil {
			attrs = append(attrs, "type", ev.Type(), "source", ev.Source(), "id", ev.ID())
		}
		e.log.Info("event rejected", attrs...)
	}
	reply.Error(w, r, e.log, err)
}

// write sends out as the HTTP 200 answer, in binary mode or, when the request was
// structured, in structured mode.
func (e *Endpoint) write(w http.ResponseWriter, r *http.Request, out *event.Event, structured bool) {
	ctx := binding.WithForceBinary(r.Context())
	if structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	if err := cehttp.WriteResponseWriter(ctx, (*binding.EventMessage)(out), http.StatusOK, w); err != nil {
		// The status line is already out; all that is left is to say so in the log.
		e.log.Warn("cannot write reply event", "err", err)
	}
}

// NewReply returns a reply event of type typ from source, with a fresh id, time now
// and data encoded as JSON. data must be a value, not bytes: the SDK would send bytes
// as data_base64.
func NewReply(source, typ string, now time.Time, data any) (*event.Event, error) {
	out := event.New()
	out.SetID(rand.Text())
	out.SetSource(source)
	out.SetType(typ)
	out.SetTime(now)
	if err := out.SetData(event.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("set reply data: %w", err)
	}
	return &out, nil
}

// Source is the source of a function's reply events: K_SERVICE, which Knative sets
// to the Service's name, or def outside Knative.
func Source(def string) string {
	if s := os.Getenv("K_SERVICE"); s != "" {
		return s
	}
	return def
}

func (e *Endpoint) receive(w http.ResponseWriter, r *http.Request) (*event.Event, bool, error) {
	ev, structured, err := Receive(w, r, e.typ)
	var re *record.Error
	if e.hint != "" && errors.Is(err, errNotAnEvent) && errors.As(err, &re) {
		c := *re
		c.Message += "; " + e.hint
		err = &c
	}
	return ev, structured, err
}

// Receive reads one CloudEvent from r in binary or structured mode, bounded to
// record.MaxBodyBytes, and checks that it is valid, of type want, and carries JSON
// data or none. structured reports the mode, so the reply can use the same one.
func Receive(w http.ResponseWriter, r *http.Request, want string) (ev *event.Event, structured bool, err error) {
	body, err := reply.ReadBody(w, r)
	if err != nil {
		return nil, false, err
	}
	msg := cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body)))
	switch msg.ReadEncoding() {
	case binding.EncodingUnknown:
		return nil, false, notAnEvent(r.Header)
	case binding.EncodingBatch:
		return nil, false, record.Invalid("Content-Type", "batches of events are not accepted; send one event per request")
	case binding.EncodingStructured:
		structured = true
	}
	ev, err = binding.ToEvent(r.Context(), msg)
	if err != nil {
		return nil, structured, eventError(err)
	}
	if err := ev.Validate(); err != nil {
		return ev, structured, eventError(err)
	}
	if ev.Type() != want {
		return ev, structured, &record.Error{Code: record.EINVALID, Field: "type", Err: errUnknownType,
			Message: fmt.Sprintf("event type %q is not handled here; this function accepts %s", ev.Type(), want)}
	}
	if ct := ev.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return ev, structured, &record.Error{Code: record.EUNSUPPORTED, Field: "datacontenttype",
				Message: fmt.Sprintf("data content type %q is not supported; send application/json", ct)}
		}
	}
	return ev, structured, nil
}

// DataError names the fields of an event's data as data.<field>, so that a record's
// "type" cannot be mistaken for the event's type attribute.
func DataError(err error) error {
	var e *record.Error
	if !errors.As(err, &e) || e.Code != record.EINVALID {
		return err
	}
	c := *e
	switch c.Field {
	case "", "body", "data":
		c.Field = "data"
	default:
		if !strings.HasPrefix(c.Field, "data.") {
			c.Field = "data." + c.Field
		}
	}
	if rest, ok := strings.CutPrefix(c.Message, "body "); ok {
		c.Message = "event data " + rest
	}
	return &c
}

// errUnknownType marks a valid event of a type this function does not handle, which
// is counted apart: it means a Trigger sends the wrong events here.
var errUnknownType = errors.New("unknown event type")

// outcome is the outcome label of cqrs_events_total for a refused event.
func outcome(err error) string {
	if errors.Is(err, errUnknownType) {
		return "unknown_type"
	}
	return record.ErrorCode(err)
}

// errNotAnEvent marks a request that is an event in neither mode, so the endpoint
// can add where plain requests go.
var errNotAnEvent = errors.New("not a CloudEvent")

// notAnEvent explains what is missing from a request that is neither mode.
func notAnEvent(h http.Header) error {
	if v := h.Get("ce-specversion"); v != "" {
		return record.Invalidf("specversion", "ce-specversion %q is not supported; send 1.0", v)
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			return record.Invalid("specversion", "binary-mode event without a ce-specversion header; send ce-specversion: 1.0")
		}
	}
	return &record.Error{Code: record.EINVALID, Field: "specversion", Err: errNotAnEvent,
		Message: "not a CloudEvent: send ce-specversion, ce-id, ce-source and ce-type headers " +
			"(binary mode) or Content-Type application/cloudevents+json (structured mode)"}
}

// eventError turns the SDK's validation errors into one EINVALID error that names
// the first attribute at fault.
func eventError(err error) error {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return &record.Error{Code: record.EINVALID, Message: fmt.Sprintf("malformed event: %v", err), Err: err}
	}
	names := make([]string, 0, len(ve))
	for k := range ve {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %v", k, ve[k])
	}
	return record.Invalidf(names[0], "invalid event: %s", strings.Join(parts, "; "))
}
