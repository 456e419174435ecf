package write

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
	"weak"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/reply"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// DefaultEventSource is the source of reply events when K_SERVICE is not set.
const DefaultEventSource = "/cqrs-write"

// ExtReplayed is the extension of a dev.cqrs.record.created event that is true when
// the event had been delivered before and the record is the one stored then.
const ExtReplayed = "replayed"

// Outcomes of an event, the outcome label of cqrs_events_total besides the error codes.
const (
	outcomeCreated  = "created"
	outcomeReplayed = "replayed"
	otherType       = "other"
)

// events is the state of the event endpoint of one Function. It is kept beside the
// Function, keyed weakly by it, so that the event code lives in this file alone and
// two functions in one process never share counters.
type events struct {
	source string
	total  *prometheus.CounterVec
}

var eventStates sync.Map // weak.Pointer[Function] -> *events

func (f *Function) events() *events {
	key := weak.Make(f)
	if s, ok := eventStates.Load(key); ok {
		return s.(*events)
	}
	source := os.Getenv("K_SERVICE")
	if source == "" {
		source = DefaultEventSource
	}
	s := &events{source: source, total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cqrs_events_total", Help: "CloudEvents received on POST /, by event type and outcome.",
	}, []string{"type", "outcome"})}
	got, loaded := eventStates.LoadOrStore(key, s)
	if !loaded {
		runtime.AddCleanup(f, func(k weak.Pointer[Function]) { eventStates.Delete(k) }, key)
	}
	return got.(*events)
}

// eventCollector returns the counter of received CloudEvents, for Collectors.
func (f *Function) eventCollector() prometheus.Collector { return f.events().total }

// handleEvent serves POST /: a dev.cqrs.record.create CloudEvent in binary or
// structured mode. The record is stored under a claim on the event's source and id,
// taken in the same atomic step as the write, so a redelivered event stores nothing
// new and gets the first record back. The reply is a dev.cqrs.record.created event in
// the mode of the request. Bad events get 400 (Knative does not retry them), a Redis
// outage 503 with Retry-After (Knative retries it).
func (f *Function) handleEvent(w http.ResponseWriter, r *http.Request) {
	st := f.events()
	if r.Method != http.MethodPost {
		st.total.WithLabelValues(otherType, record.EMETHOD).Inc()
		reply.Error(w, r, f.log, reply.MethodNotAllowed(r.Method, http.MethodPost))
		return
	}
	ev, structured, err := receiveEvent(w, r, record.EventCreate)
	if err == nil {
		var ans Answer
		var created bool
		ans, created, err = f.createFromEvent(r.Context(), ev)
		if err == nil {
			f.replyCreated(w, r, st, ans, created, structured)
			return
		}
	}
	label := otherType
	if ev != nil && ev.Type() == record.EventCreate {
		label = record.EventCreate
	}
	st.total.WithLabelValues(label, outcome(err)).Inc()
	if c := record.ErrorCode(err); c != record.EUNAVAILABLE && c != record.EINTERNAL {
		attrs := []any{"err", err}
		if ev != nil {
			attrs = append(attrs, "type", ev.Type(), "source", ev.Source(), "id", ev.ID())
		}
		f.log.Info("event rejected", attrs...)
	}
	reply.Error(w, r, f.log, err)
}

// createFromEvent stores the record that ev's data describes under ev's claim.
func (f *Function) createFromEvent(ctx context.Context, ev *event.Event) (Answer, bool, error) {
	in, err := decodeEventData(ev.Data())
	if err != nil {
		return Answer{}, false, dataError(err)
	}
	ans, created, err := f.Create(ctx, in, store.EventClaim(ev.Source(), ev.ID()))
	return ans, created, dataError(err)
}

func (f *Function) replyCreated(w http.ResponseWriter, r *http.Request, st *events, ans Answer, created, structured bool) {
	result := outcomeCreated
	if !created {
		result = outcomeReplayed
	}
	st.total.WithLabelValues(record.EventCreate, result).Inc()
	out := event.New()
	out.SetID(rand.Text())
	out.SetSource(st.source)
	out.SetType(record.EventCreated)
	out.SetSubject(ans.ID)
	out.SetTime(f.now())
	out.SetExtension(ExtReplayed, !created)
	// Set from the value, not from bytes: the SDK sends []byte as data_base64.
	if err := out.SetData(event.ApplicationJSON, ans); err != nil {
		reply.Error(w, r, f.log, fmt.Errorf("set reply data: %w", err))
		return
	}
	ctx := binding.WithForceBinary(r.Context())
	if structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	if err := cehttp.WriteResponseWriter(ctx, (*binding.EventMessage)(&out), http.StatusOK, w); err != nil {
		// The status line is already out; all that is left is to say so in the log.
		f.log.Warn("cannot write reply event", "err", err)
	}
}

// decodeEventData is DecodeCreate with a clearer word for data that is JSON but
// not an object.
func decodeEventData(data []byte) (record.Create, error) {
	if d := bytes.TrimSpace(data); len(d) > 0 && d[0] != '{' && utf8.Valid(d) && json.Valid(d) {
		return record.Create{}, record.Invalid("body", `event data must be a JSON object {"type":"bp","text":"..."}`)
	}
	return DecodeCreate(data)
}

// dataError names fields of the event's data as data.<field>, so that the record's
// "type" cannot be mistaken for the event's type attribute.
func dataError(err error) error {
	var e *record.Error
	if !errors.As(err, &e) || e.Code != record.EINVALID {
		return err
	}
	c := *e
	switch c.Field {
	case "", "body":
		c.Field = "data"
	default:
		c.Field = "data." + c.Field
	}
	if rest, ok := strings.CutPrefix(c.Message, "body "); ok {
		c.Message = "event data " + rest
	}
	return &c
}

// receiveEvent reads one CloudEvent from r in binary or structured mode, bounded to
// record.MaxBodyBytes, and checks that it is valid, of type want, and carries JSON
// data or none. structured reports the mode, so the reply can use the same one.
func receiveEvent(w http.ResponseWriter, r *http.Request, want string) (ev *event.Event, structured bool, err error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, record.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, false, &record.Error{Code: record.ETOOLARGE, Field: "body",
			Message: fmt.Sprintf("event is over %d bytes", record.MaxBodyBytes)}
	}
	if err != nil {
		return nil, false, record.Invalidf("body", "cannot read event: %v", err)
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
	return record.Invalid("specversion", "not a CloudEvent: send ce-specversion, ce-id, ce-source and ce-type headers "+
		"(binary mode) or Content-Type application/cloudevents+json (structured mode); plain JSON goes to /records")
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
