package cloudevent

import (
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// Event is a received CloudEvent with its source and id exactly as the sender wrote
// them. The SDK reads the source as a URI reference and may rewrite it ("/a b"
// becomes "/a%20b"), and trims the id; an event's idempotency claim uses what was
// sent, so that two senders never share one.
type Event struct {
	*event.Event
	SentSource string
	SentID     string
}

// MaxIDBytes bounds an event's id and source, as the HTTP Idempotency-Key is bounded:
// together they become a claim kept for the idempotency TTL.
const MaxIDBytes = 255

// Content types of the structured modes.
const (
	structuredType = "application/cloudevents+json"
	batchType      = "application/cloudevents-batch+json"
)

func (e *Endpoint) receive(w http.ResponseWriter, r *http.Request) (*Event, bool, error) {
	ev, structured, err := Receive(w, r, e.types...)
	var re *fail.Error
	if e.hint != "" && errors.Is(err, errNotAnEvent) && errors.As(err, &re) {
		c := *re
		c.Message += "; " + e.hint
		err = &c
	}
	return ev, structured, err
}

// Receive reads one CloudEvent from r in binary or structured mode, bounded to
// serve.MaxBodyBytes, and checks that it is a valid CloudEvents 1.0 event of one of
// the types want (the first is the function's own, named in refusals), with an id
// and source of at most MaxIDBytes, and JSON data or none (never both data and
// data_base64). structured reports the mode, so the reply can use the same one.
// Every refusal names the attribute at fault.
func Receive(w http.ResponseWriter, r *http.Request, want ...string) (ev *Event, structured bool, err error) {
	body, err := serve.ReadBody(w, r)
	if err != nil {
		return nil, false, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var a attributes
	switch {
	case mt == batchType:
		return nil, false, fail.Invalid("Content-Type", "batches of events are not accepted; send one event per request")
	case mt == structuredType:
		structured = true
		a, err = structuredAttributes(body)
	case len(r.Header.Values("Ce-Specversion")) > 0:
		a, err = binaryAttributes(r.Header, body)
	default:
		return nil, false, notAnEvent(r.Header)
	}
	if err != nil {
		return nil, structured, err
	}
	ev, err = a.event(structured)
	if err != nil {
		return ev, structured, err
	}
	for _, at := range []struct{ name, value string }{{"id", a.ID}, {"source", a.Source}} {
		if len(at.value) > MaxIDBytes {
			return ev, structured, fail.Invalidf(at.name, "%s is %d bytes, at most %d allowed", at.name, len(at.value), MaxIDBytes)
		}
	}
	if !slices.Contains(want, a.Type) {
		return ev, structured, &fail.Error{Code: fail.EINVALID, Field: "type", Err: errUnknownType,
			Message: fmt.Sprintf("event type %q is not handled here; this function accepts %s", a.Type, want[0])}
	}
	if ct := a.DataContentType; ct != "" && !serve.IsJSON(ct) {
		return ev, structured, serve.UnsupportedType("datacontenttype", ct)
	}
	return ev, structured, nil
}

// event builds the SDK's event from a and validates it. A time that is no RFC 3339
// timestamp is refused here: the SDK's message for it names a Go type.
func (a attributes) event(structured bool) (*Event, error) {
	sdk := event.New()
	ev := &Event{Event: &sdk, SentSource: a.Source, SentID: a.ID}
	sdk.SetID(a.ID)
	sdk.SetSource(a.Source)
	sdk.SetType(a.Type)
	sdk.SetSubject(a.Subject)
	sdk.SetDataContentType(a.DataContentType)
	if a.DataSchema != "" {
		sdk.SetDataSchema(a.DataSchema)
	}
	sdk.DataEncoded = a.data
	if a.SpecVersion != event.CloudEventsVersionV1 {
		where := "ce-specversion"
		if structured {
			where = "specversion"
		}
		if a.SpecVersion == "" {
			return ev, fail.Invalidf("specversion", "%s is missing; send 1.0", where)
		}
		return ev, fail.Invalidf("specversion", "%s %q is not supported; send 1.0", where, a.SpecVersion)
	}
	if a.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, a.Time)
		if err != nil {
			return ev, fail.Invalidf("time", "time %q is not an RFC 3339 timestamp such as 2026-01-02T15:04:05Z", a.Time)
		}
		sdk.SetTime(t)
	}
	if err := sdk.Validate(); err != nil {
		return ev, eventError(err)
	}
	return ev, nil
}

// errUnknownType marks a valid event of a type this function does not handle, which
// is counted apart: it means a Trigger sends the wrong events here.
var errUnknownType = errors.New("unknown event type")

// outcome is the outcome label of cqrs_events_total for a refused event.
func outcome(err error) string {
	if errors.Is(err, errUnknownType) {
		return "unknown_type"
	}
	return fail.Code(err)
}

// errNotAnEvent marks a request that is an event in neither mode, so the endpoint
// can add where plain requests go.
var errNotAnEvent = errors.New("not a CloudEvent")

// notAnEvent explains what is missing from a request that is neither mode.
func notAnEvent(h http.Header) error {
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			return fail.Invalid("specversion", "binary-mode event without a ce-specversion header; send ce-specversion: 1.0")
		}
	}
	return &fail.Error{Code: fail.EINVALID, Field: "specversion", Err: errNotAnEvent,
		Message: "not a CloudEvent: send ce-specversion, ce-id, ce-source and ce-type headers " +
			"(binary mode) or Content-Type " + structuredType + " (structured mode)"}
}

// eventError turns the SDK's validation errors into one invalid error that names
// the first attribute at fault.
func eventError(err error) error {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return &fail.Error{Code: fail.EINVALID, Message: fmt.Sprintf("invalid event: %v", err), Err: err}
	}
	names := slices.Sorted(maps.Keys(ve))
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %v", k, ve[k])
	}
	return fail.Invalidf(names[0], "invalid event: %s", strings.Join(parts, "; "))
}
