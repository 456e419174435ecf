package cloudevent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// Event is a received CloudEvent with its source and id exactly as the sender wrote
// them. The SDK reads the source as a URI reference and may rewrite it ("/a b"
// becomes "/a%20b"); an event's idempotency claim uses what was sent, so that two
// senders never share one.
type Event struct {
	*event.Event
	SentSource string
	SentID     string
}

// MaxIDBytes bounds an event's id and source, as the HTTP Idempotency-Key is bounded:
// together they become a claim kept for the idempotency TTL.
const MaxIDBytes = 255

func (e *Endpoint) receive(w http.ResponseWriter, r *http.Request) (*Event, bool, error) {
	ev, structured, err := Receive(w, r, e.typ)
	var re *fail.Error
	if e.hint != "" && errors.Is(err, errNotAnEvent) && errors.As(err, &re) {
		c := *re
		c.Message += "; " + e.hint
		err = &c
	}
	return ev, structured, err
}

// Receive reads one CloudEvent from r in binary or structured mode, bounded to
// serve.MaxBodyBytes, and checks that it is a valid CloudEvents 1.0 event of type
// want, with an id and source of at most MaxIDBytes, and JSON data or none (never
// both data and data_base64). structured reports the mode, so the reply can use the
// same one.
func Receive(w http.ResponseWriter, r *http.Request, want string) (ev *Event, structured bool, err error) {
	body, err := serve.ReadBody(w, r)
	if err != nil {
		return nil, false, err
	}
	msg := cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body)))
	var sent sentAttributes
	switch msg.ReadEncoding() {
	case binding.EncodingUnknown:
		return nil, false, notAnEvent(r.Header)
	case binding.EncodingBatch:
		return nil, false, fail.Invalid("Content-Type", "batches of events are not accepted; send one event per request")
	case binding.EncodingStructured:
		structured = true
		sent, err = structuredAttributes(body)
	default:
		sent, err = binaryAttributes(r.Header)
	}
	if err != nil {
		return nil, structured, err
	}
	sdk, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		return nil, structured, eventError(err)
	}
	ev = &Event{Event: sdk, SentSource: sent.source, SentID: sent.id}
	if err := sdk.Validate(); err != nil {
		return ev, structured, eventError(err)
	}
	if v := sdk.SpecVersion(); v != event.CloudEventsVersionV1 {
		return ev, structured, fail.Invalidf("specversion", "specversion %q is not supported; send 1.0", v)
	}
	for _, a := range []struct{ name, value string }{{"id", sent.id}, {"source", sent.source}} {
		if len(a.value) > MaxIDBytes {
			return ev, structured, fail.Invalidf(a.name, "%s is %d bytes, at most %d allowed", a.name, len(a.value), MaxIDBytes)
		}
	}
	if sdk.Type() != want {
		return ev, structured, &fail.Error{Code: fail.EINVALID, Field: "type", Err: errUnknownType,
			Message: fmt.Sprintf("event type %q is not handled here; this function accepts %s", ev.Type(), want)}
	}
	if ct := ev.DataContentType(); ct != "" {
		if !serve.IsJSON(ct) {
			return ev, structured, serve.UnsupportedType("datacontenttype", ct)
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
	return fail.Code(err)
}

// errNotAnEvent marks a request that is an event in neither mode, so the endpoint
// can add where plain requests go.
var errNotAnEvent = errors.New("not a CloudEvent")

// notAnEvent explains what is missing from a request that is neither mode.
func notAnEvent(h http.Header) error {
	if v := h.Get("ce-specversion"); v != "" {
		return fail.Invalidf("specversion", "ce-specversion %q is not supported; send 1.0", v)
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "ce-") {
			return fail.Invalid("specversion", "binary-mode event without a ce-specversion header; send ce-specversion: 1.0")
		}
	}
	return &fail.Error{Code: fail.EINVALID, Field: "specversion", Err: errNotAnEvent,
		Message: "not a CloudEvent: send ce-specversion, ce-id, ce-source and ce-type headers " +
			"(binary mode) or Content-Type application/cloudevents+json (structured mode)"}
}

// eventError turns the SDK's validation errors into one invalid error that names
// the first attribute at fault.
func eventError(err error) error {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return &fail.Error{Code: fail.EINVALID, Message: fmt.Sprintf("malformed event: %v", err), Err: err}
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
	return fail.Invalidf(names[0], "invalid event: %s", strings.Join(parts, "; "))
}
