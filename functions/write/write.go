// Package write is the command side: a Knative function that validates create
// commands and stores them on the Redis master.
package write

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/reply"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Function is the write function instance.
type Function struct {
	cfg       *Config
	log       *slog.Logger
	rdb       redis.UniversalClient
	store     *store.Store
	validator *record.Validator
	metrics   metrics
	now       func() time.Time
	events    *cloudevent.Endpoint
	source    string // of reply events
}

type metrics struct {
	created      *prometheus.CounterVec
	replays      prometheus.Counter
	unreplicated prometheus.Counter
	failures     *prometheus.CounterVec
	events       *prometheus.CounterVec
}

// New returns a function that reads its configuration from the environment in Start.
func New() *Function {
	f := &Function{log: slog.Default(), now: time.Now}
	f.metrics = metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_records_created_total", Help: "Records stored, by type.",
		}, []string{"type"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_create_replays_total", Help: "Creates answered with an earlier record (idempotency key or redelivered event).",
		}),
		unreplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cqrs_create_unreplicated_total", Help: "Creates stored on the master that fewer than WRITE_REPLICAS replicas confirmed in time.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cqrs_create_failures_total", Help: "Creates refused, by error code.",
		}, []string{"code"}),
		events: cloudevent.NewCounter(),
	}
	return f
}

// NewWithConfig returns a function that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *Function {
	f := New()
	f.cfg = &cfg
	return f
}

// Start connects to Redis and loads the write script. An unreachable Redis does not
// fail Start: readiness reports it, and requests answer 503 until it is back.
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := serve.Configure(f.cfg)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	f.cfg = cfg
	f.log = slog.Default().With("function", "write")
	f.validator = record.NewValidator(f.cfg.RecordTypes, f.cfg.MaxTextBytes)
	f.source = cloudevent.Source(DefaultEventSource)
	f.events = cloudevent.NewEndpoint(record.EventCreate, "plain JSON goes to POST /records", f.log, f.metrics.events, f.handleCreateEvent)
	f.rdb = store.NewClient(f.cfg.redis())
	f.store = store.New(f.rdb)
	if err := f.store.Load(ctx); err != nil {
		f.log.Warn("redis not reachable at start; will retry on each request", "err", err)
	}
	return nil
}

// Stop closes the Redis client.
func (f *Function) Stop(context.Context) error {
	if f.rdb == nil {
		return nil
	}
	return f.rdb.Close()
}

// Ready reports whether the Redis master answers.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	if f.store == nil {
		return false, errors.New("not started")
	}
	if err := f.store.Ping(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Alive reports that the process can serve; Redis trouble is readiness, not liveness.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Collectors returns the function's Prometheus metrics.
func (f *Function) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.metrics.created, f.metrics.replays, f.metrics.unreplicated, f.metrics.failures, f.metrics.events}
}

// Handle serves POST /records and CloudEvents on POST /.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/":
		f.events.ServeHTTP(w, r)
	case r.URL.Path == "/records":
		if r.Method != http.MethodPost {
			reply.Error(w, r, f.log, reply.MethodNotAllowed(r.Method, http.MethodPost))
			return
		}
		f.create(w, r)
	default:
		reply.Error(w, r, f.log, reply.NotFound(r.URL.Path))
	}
}

// Answer is a stored record as the write side returns it.
type Answer struct {
	record.Record
	// Replicated is set only when WRITE_REPLICAS > 0.
	Replicated *bool `json:"replicated,omitempty"`
}

func (f *Function) create(w http.ResponseWriter, r *http.Request) {
	in, err := decodeCreate(w, r)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	claim := ""
	if ks := r.Header.Values("Idempotency-Key"); len(ks) > 0 {
		k := ks[0]
		if len(ks) > 1 {
			f.fail(w, r, record.Invalid("Idempotency-Key", "Idempotency-Key is given more than once; give it once"))
			return
		}
		if err := checkIdempotencyKey(k); err != nil {
			f.fail(w, r, err)
			return
		}
		claim = store.HTTPClaim(k)
	}
	ans, created, err := f.Create(r.Context(), in, claim)
	if record.ErrorCode(err) == record.ECONFLICT {
		err = &record.Error{Code: record.ECONFLICT, Field: "Idempotency-Key", Err: err,
			Message: "this Idempotency-Key was already used for a different record; send new content with a new key"}
	}
	if err != nil {
		f.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/records/"+ans.ID)
	if ans.Replicated != nil {
		w.Header().Set("X-Replicated", strconv.FormatBool(*ans.Replicated))
	}
	status := http.StatusCreated
	if ans.Replicated != nil && !*ans.Replicated {
		// Stored on the master, but not yet as durable as WRITE_REPLICAS asks: a
		// failover now could lose it, so this is not the plain 201 of a durable write.
		status = http.StatusAccepted
	}
	if !created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	reply.JSON(w, status, ans)
}

func (f *Function) fail(w http.ResponseWriter, r *http.Request, err error) {
	f.metrics.failures.WithLabelValues(record.ErrorCode(err)).Inc()
	reply.Error(w, r, f.log, err)
}

// Create validates in and stores it under claim ("" for none). created is false when
// the claim was already held; the answer then carries the first record.
func (f *Function) Create(ctx context.Context, in record.Create, claim string) (ans Answer, created bool, err error) {
	in, err = f.validator.Check(in)
	if err != nil {
		return Answer{}, false, err
	}
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

// decodeCreate reads a JSON create command, refusing what is not one with an error
// that names the field: oversized bodies, other content types, malformed JSON,
// unknown fields, invalid UTF-8.
func decodeCreate(w http.ResponseWriter, r *http.Request) (record.Create, error) {
	var c record.Create
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return c, &record.Error{Code: record.EUNSUPPORTED, Field: "Content-Type",
				Message: fmt.Sprintf("content type %q is not supported; send application/json", ct)}
		}
	}
	body, err := reply.ReadBody(w, r)
	if err != nil {
		return c, err
	}
	return DecodeCreate(body)
}

// DecodeCreate parses a create command from JSON.
func DecodeCreate(body []byte) (record.Create, error) {
	var c record.Create
	if len(bytes.TrimSpace(body)) == 0 {
		return c, record.Invalid("body", `body is empty; send {"type":"bp","text":"..."}`)
	}
	if !utf8.Valid(body) {
		return c, record.Invalid(invalidUTF8Field(body), "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, jsonError(err)
	}
	if dec.More() {
		return c, record.Invalid("body", "body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return c, record.Invalid("body", "body holds more than one JSON value")
	}
	if k := duplicateKey(body); k != "" {
		return record.Create{}, record.Invalidf(k, "%s is given more than once; give it once", k)
	}
	return c, nil
}

// duplicateKey returns the first top-level key of the JSON object in body that
// repeats an earlier one as encoding/json matches names (ignoring case), or "".
// encoding/json keeps the last value and other parsers the first, so a repeated key
// would mean one record to this function and another to a proxy that checked it.
func duplicateKey(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := t.(string)
		for _, s := range seen {
			if strings.EqualFold(s, k) {
				return k
			}
		}
		seen = append(seen, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// invalidUTF8Field names the top-level field whose value holds the bad bytes,
// because encoding/json would silently replace them.
func invalidUTF8Field(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"type", "text"} {
			if !utf8.Valid(m[k]) {
				return k
			}
		}
		for k, v := range m {
			if !utf8.Valid(v) || !utf8.ValidString(k) {
				return strings.ToValidUTF8(k, "?")
			}
		}
	}
	return "body"
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return record.Invalidf("body", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te) && te.Field == "":
		return record.Invalidf("body", `body must be a JSON object {"type":"bp","text":"..."}, not %s`, te.Value)
	case errors.As(err, &te):
		return record.Invalidf(te.Field, "%s must be a JSON string, not %s", te.Field, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return record.Invalid("body", "malformed JSON: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return record.Invalidf(name, "unknown field %q; a record has type and text", name)
	}
	return record.Invalidf("body", "malformed JSON: %v", err)
}

// checkIdempotencyKey bounds the header to what fits a Redis key comfortably and
// prints cleanly in logs.
func checkIdempotencyKey(k string) error {
	if k == "" || len(k) > 255 {
		return record.Invalid("Idempotency-Key", "Idempotency-Key must be 1 to 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return record.Invalid("Idempotency-Key", "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a random 16-character record id. Ids are random rather than derived
// from seq so that an id never names two records, even after a failover rolls seq back.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
