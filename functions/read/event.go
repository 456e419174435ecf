package read

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/reply"
)

// DefaultEventSource is the source of reply events when K_SERVICE is not set.
const DefaultEventSource = "/cqrs-read"

// Extensions of a dev.cqrs.records.result event; they carry what X-Served-By and
// X-Replica-Seq carry on the HTTP API. replicaseq is a string because a CloudEvents
// integer has only 32 bits.
const (
	ExtServedBy   = "servedby"
	ExtReplicaSeq = "replicaseq"
)

const (
	outcomeAnswered = "answered"
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

// queryData is the data of a dev.cqrs.records.query event; the fields mean what the
// query parameters of GET /records mean.
type queryData struct {
	Type   string `json:"type"`
	Q      string `json:"q"`
	Limit  *int   `json:"limit"`
	Cursor string `json:"cursor"`
	MinSeq *int64 `json:"minSeq"`
}

// handleEvent serves POST /: a dev.cqrs.records.query CloudEvent in binary or
// structured mode, answered with a dev.cqrs.records.result event in the same mode
// whose data is the page GET /records would return. Bad events get 400 (Knative does
// not retry them), an unavailable Redis 503 with Retry-After (Knative retries it).
func (f *Function) handleEvent(w http.ResponseWriter, r *http.Request) {
	st := f.events()
	if r.Method != http.MethodPost {
		st.total.WithLabelValues(otherType, record.EMETHOD).Inc()
		reply.Error(w, r, f.log, reply.MethodNotAllowed(r.Method, http.MethodPost))
		return
	}
	ev, structured, err := receiveEvent(w, r, record.EventQuery)
	if err == nil {
		var q Query
		q, err = f.parseQueryData(ev.Data())
		if err == nil {
			var res Result
			var served Served
			if res, served, err = f.Query(r.Context(), q); err == nil {
				f.replyResult(w, r, st, res, served, structured)
				return
			}
		}
	}
	label := otherType
	if ev != nil && ev.Type() == record.EventQuery {
		label = record.EventQuery
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

func (f *Function) replyResult(w http.ResponseWriter, r *http.Request, st *events, res Result, served Served, structured bool) {
	st.total.WithLabelValues(record.EventQuery, outcomeAnswered).Inc()
	out := event.New()
	out.SetID(rand.Text())
	out.SetSource(st.source)
	out.SetType(record.EventResult)
	out.SetTime(time.Now())
	out.SetExtension(ExtServedBy, served.By)
	out.SetExtension(ExtReplicaSeq, strconv.FormatInt(served.Seq, 10))
	// Set from the value, not from bytes: the SDK sends []byte as data_base64.
	if err := out.SetData(event.ApplicationJSON, res); err != nil {
		reply.Error(w, r, f.log, fmt.Errorf("set reply data: %w", err))
		return
	}
	setServed(w, served)
	ctx := binding.WithForceBinary(r.Context())
	if structured {
		ctx = binding.WithForceStructured(r.Context())
	}
	if err := cehttp.WriteResponseWriter(ctx, (*binding.EventMessage)(&out), http.StatusOK, w); err != nil {
		// The status line is already out; all that is left is to say so in the log.
		f.log.Warn("cannot write reply event", "err", err)
	}
}

// parseQueryData decodes the event's data strictly (no unknown fields, numbers as
// numbers) and validates it with ParseQuery, so events and GET /records accept
// exactly the same queries. No data at all is the newest page of every type.
func (f *Function) parseQueryData(data []byte) (Query, error) {
	var d queryData
	if len(bytes.TrimSpace(data)) > 0 {
		if !utf8.Valid(data) {
			return Query{}, record.Invalid("data", "event data is not valid UTF-8")
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			return Query{}, queryJSONError(err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return Query{}, record.Invalid("data", "event data holds more than one JSON value")
		}
	}
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("type", d.Type)
	set("q", d.Q)
	set("cursor", d.Cursor)
	if d.Limit != nil {
		v.Set("limit", strconv.Itoa(*d.Limit))
	}
	if d.MinSeq != nil {
		v.Set("minSeq", strconv.FormatInt(*d.MinSeq, 10))
	}
	q, err := f.ParseQuery(v, "")
	return q, dataField(err)
}

func queryJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return record.Invalidf("data", "malformed JSON in event data at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return record.Invalidf("data", "event data must be a JSON object, not %s", te.Value)
		}
		return record.Invalidf("data."+te.Field, "%s must be a JSON %s, not %s", te.Field, jsonKind(te.Field), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return record.Invalid("data", "malformed JSON in event data: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return record.Invalidf("data."+name, "unknown field %q; a query has type, q, limit, cursor and minSeq", name)
	}
	return record.Invalidf("data", "malformed JSON in event data: %v", err)
}

func jsonKind(field string) string {
	switch field {
	case "limit", "minSeq":
		return "whole number"
	}
	return "string"
}

// dataField names fields of the event's data as data.<field>, so that the record
// type in the data cannot be mistaken for the event's type attribute.
func dataField(err error) error {
	var e *record.Error
	if !errors.As(err, &e) || e.Code != record.EINVALID {
		return err
	}
	c := *e
	c.Field = "data." + c.Field
	if c.Field == "data." {
		c.Field = "data"
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
		"(binary mode) or Content-Type application/cloudevents+json (structured mode); plain queries go to GET /records")
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
