package write_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// evFixture is the write function served on a real master, with a store on the same
// master to look at what was written.
type evFixture struct {
	master *redisproc.Server
	store  *store.Store
	srv    *httptest.Server
	client cloudevents.Client
}

func evStart(t *testing.T, edit func(*write.Config)) *evFixture {
	t.Helper()
	m := testenv.Master(t)
	srv := server(t, m, edit)
	rc := store.NewClient(store.Options{Addr: m.Addr()})
	t.Cleanup(func() { rc.Close() })
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	return &evFixture{master: m, store: store.New(rc), srv: srv, client: c}
}

// modes are the two HTTP content modes, as the SDK's client sends them.
var modes = []struct {
	name  string
	force func(context.Context) context.Context
}{
	{"binary", binding.WithForceBinary},
	{"structured", binding.WithForceStructured},
}

// send delivers e with the SDK's client and returns the reply event, or the HTTP
// status of a refusal (0 when nothing answered).
func (fx *evFixture) send(t *testing.T, force func(context.Context) context.Context, e cloudevents.Event) (*cloudevents.Event, int) {
	t.Helper()
	return testenv.Deliver(t, fx.client, fx.srv.URL+"/", force, e)
}

func replyRecord(t *testing.T, e *cloudevents.Event) record.Record {
	t.Helper()
	if e == nil {
		t.Fatal("no reply event")
	}
	var r record.Record
	if err := e.DataAs(&r); err != nil {
		t.Fatalf("reply data %s: %v", e.Data(), err)
	}
	return r
}

// storedPage is what the master holds, decoded, newest first.
type storedPage struct{ Records []record.Record }

func (fx *evFixture) stored(t *testing.T) (storedPage, int64) {
	t.Helper()
	ctx := context.Background()
	dp, err := fx.store.PageDocs(ctx, store.Query{Limit: 100}, store.Need{})
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	var p storedPage
	for _, d := range dp.Docs {
		var r record.Record
		if err := json.Unmarshal(d, &r); err != nil {
			t.Fatalf("stored document %s: %v", d, err)
		}
		p.Records = append(p.Records, r)
	}
	ps, err := fx.store.Positions(ctx)
	if err != nil {
		t.Fatalf("seq: %v", err)
	}
	return p, ps[0].Seq
}

func TestCreateEvent(t *testing.T) {
	t.Setenv("K_SERVICE", "")
	fx := evStart(t, nil)
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			text := "hello from " + m.name + " mode"
			in := testenv.Event(record.EventCreate, "/test/"+m.name, "ev-1", record.Create{Type: "cmt", Text: "  " + text + " "})
			out, status := fx.send(t, m.force, in)
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200", status)
			}
			if err := out.Validate(); err != nil {
				t.Errorf("reply is not a valid event: %v", err)
			}
			r := replyRecord(t, out)
			if r.ID == "" || r.Seq != int64(i+1) || r.Type != "cmt" || r.Text != text || time.Since(r.CreatedAt) > time.Minute {
				t.Errorf("reply record = %+v, want an id, seq %d, type cmt, text %q, recent createdAt", r, i+1, text)
			}
			checks := []struct{ what, got, want string }{
				{"type", out.Type(), record.EventCreated},
				{"source", out.Source(), write.DefaultEventSource},
				{"subject", out.Subject(), r.ID},
				{"datacontenttype", out.DataContentType(), cloudevents.ApplicationJSON},
				{"replayed", fmt.Sprint(out.Extensions()[write.ExtReplayed]), "false"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("reply %s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if out.ID() == "" || out.ID() == in.ID() {
				t.Errorf("reply id = %q, want a new one", out.ID())
			}
			p, _ := fx.stored(t)
			if len(p.Records) == 0 || p.Records[0] != r {
				t.Errorf("newest stored record = %+v, want the reply's %+v", p.Records, r)
			}
		})
	}
}

func TestCreateEventReplySourceIsKService(t *testing.T) {
	t.Setenv("K_SERVICE", "cqrs-write-test")
	fx := evStart(t, nil)
	out, status := fx.send(t, binding.WithForceBinary, testenv.Event(record.EventCreate, "/test", "1", record.Create{Type: "bp", Text: "x"}))
	if status != http.StatusOK || out == nil {
		t.Fatalf("status %d, want 200 with a reply", status)
	}
	if out.Source() != "cqrs-write-test" {
		t.Errorf("reply source = %q, want K_SERVICE cqrs-write-test", out.Source())
	}
}

// rawPost sends a hand-made request to /.
func rawPost(t *testing.T, url string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	return testenv.Do(t, http.MethodPost, url+"/", header, body)
}

func TestCreateEventReplyKeepsTheRequestMode(t *testing.T) {
	fx := evStart(t, nil)
	resp, body := rawPost(t, fx.srv.URL, testenv.Header("ce-specversion", "1.0", "ce-id", "a", "ce-source", "/raw",
		"ce-type", record.EventCreate, "Content-Type", "application/json"), `{"type":"bp","text":"binary"}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != record.EventCreated ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("binary: status %d, ce-type %q, content type %q; want 200, %s, application/json",
			resp.StatusCode, resp.Header.Get("Ce-Type"), resp.Header.Get("Content-Type"), record.EventCreated)
	}
	var r record.Record
	if err := json.Unmarshal(body, &r); err != nil || r.Text != "binary" || resp.Header.Get("Ce-Subject") != r.ID {
		t.Errorf("binary: body %s (%v), ce-subject %q; want the record as data, subject its id", body, err, resp.Header.Get("Ce-Subject"))
	}

	resp, body = rawPost(t, fx.srv.URL, testenv.Header("Content-Type", "application/cloudevents+json; charset=utf-8"),
		`{"specversion":"1.0","id":"b","source":"/raw","type":"`+record.EventCreate+`","data":{"type":"bp","text":"structured"}}`)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cloudevents+json") {
		t.Fatalf("structured: status %d, content type %q; want 200, application/cloudevents+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var env struct {
		Type string        `json:"type"`
		Data record.Record `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Type != record.EventCreated || env.Data.Text != "structured" {
		t.Errorf("structured reply %s (%v): want type %s with the record as data", body, err, record.EventCreated)
	}
}

// TestCreateEventRedelivered is the Broker's at-least-once delivery: one event
// delivered 1,000 times, 16 at a time, in both modes, stores one record, and every
// reply carries it.
func TestCreateEventRedelivered(t *testing.T) {
	fx := evStart(t, nil)
	const deliveries, workers = 1000, 16
	in := testenv.Event(record.EventCreate, "/test/broker", "delivered-many-times", record.Create{Type: "rvw", Text: "once only"})

	type result struct {
		id       string
		replayed string
		status   int
	}
	results := make(chan result, deliveries)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				out, status := fx.send(t, modes[i%2].force, in)
				res := result{status: status}
				if out != nil {
					var r record.Record
					if err := out.DataAs(&r); err == nil {
						res.id = r.ID
					}
					res.replayed = fmt.Sprint(out.Extensions()[write.ExtReplayed])
				}
				results <- res
			}
		})
	}
	for i := range deliveries {
		next <- i
	}
	close(next)
	wg.Wait()
	close(results)

	ids := map[string]int{}
	fresh := 0
	for r := range results {
		if r.status != http.StatusOK {
			t.Errorf("a delivery got %d, want 200", r.status)
		}
		ids[r.id]++
		if r.replayed == "false" {
			fresh++
		}
	}
	if len(ids) != 1 {
		t.Errorf("replies carried %d record ids %v, want one", len(ids), ids)
	}
	if fresh != 1 {
		t.Errorf("%d replies said replayed=false, want exactly 1", fresh)
	}
	p, seq := fx.stored(t)
	if len(p.Records) != 1 || seq != 1 {
		t.Fatalf("store holds %d records, seq %d; want 1 and 1", len(p.Records), seq)
	}
	if _, ok := ids[p.Records[0].ID]; !ok {
		t.Errorf("stored record %s is not the one the replies carried %v", p.Records[0].ID, ids)
	}

	// The claim expires after IDEMPOTENCY_TTL (24h by default), not before.
	ttl, err := fx.master.Do("PTTL", store.EventClaim(in.Source(), in.ID()).Key(1))
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	fmt.Sscan(ttl, &ms)
	if ms <= int64(23*time.Hour/time.Millisecond) || ms > int64(24*time.Hour/time.Millisecond) {
		t.Errorf("claim PTTL = %s ms, want just under 24h", ttl)
	}

	// The same id from another source is another event.
	other := in.Clone()
	other.SetSource("/test/elsewhere")
	out, status := fx.send(t, binding.WithForceBinary, other)
	if status != http.StatusOK {
		t.Fatalf("other source: status %d, want 200", status)
	}
	if r := replyRecord(t, out); r.ID == p.Records[0].ID || r.Seq != 2 {
		t.Errorf("other source got record %+v, want a new one with seq 2", r)
	}
	if p, seq := fx.stored(t); len(p.Records) != 2 || seq != 2 {
		t.Errorf("store holds %d records, seq %d; want 2 and 2", len(p.Records), seq)
	}

	metrics := testenv.Metrics(t, fx.srv.URL, "")
	for _, want := range []string{
		`cqrs_events_total{outcome="created",type="dev.cqrs.record.create"} 2`,
		fmt.Sprintf(`cqrs_events_total{outcome="replayed",type="dev.cqrs.record.create"} %d`, deliveries-1),
	} {
		if !metrics[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestCreateEventIdempotencyTTL(t *testing.T) {
	fx := evStart(t, func(c *write.Config) { c.IdempotencyTTL = time.Second })
	in := testenv.Event(record.EventCreate, "/test", "short-lived", record.Create{Type: "bp", Text: "ttl"})
	first, _ := fx.send(t, binding.WithForceBinary, in)
	ms, err := fx.master.Do("PTTL", store.EventClaim("/test", "short-lived").Key(1))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	fmt.Sscan(ms, &n)
	if n <= 0 || n > 1000 {
		t.Errorf("claim PTTL = %s ms, want at most IDEMPOTENCY_TTL 1s", ms)
	}
	// Once the claim has expired the event is new again: the window is the TTL.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := fx.master.Do("EXISTS", store.EventClaim("/test", "short-lived").Key(1)); v == "0" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	second, _ := fx.send(t, binding.WithForceBinary, in)
	if a, b := replyRecord(t, first), replyRecord(t, second); a.ID == b.ID {
		t.Errorf("after the TTL the event got the old record %s again, want a new one", a.ID)
	}
}

func TestCreateEventRefused(t *testing.T) {
	fx := evStart(t, nil)
	ce := func(kv ...string) http.Header {
		base := []string{"ce-specversion", "1.0", "ce-id", "x1", "ce-source", "/test", "ce-type", record.EventCreate, "Content-Type", "application/json"}
		h := testenv.Header(base...)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	structured := testenv.Header("Content-Type", "application/cloudevents+json")
	good := `{"type":"bp","text":"hi"}`
	testenv.WantRefusals(t, fx.srv.URL+"/", []testenv.Refusal{
		testenv.Refuse("empty text", ce(), `{"type":"bp","text":"   "}`, 400, "data.text", "text is required"),
		testenv.Refuse("unknown record type", ce(), `{"type":"poem","text":"hi"}`, 400, "data.type", "unknown type"),
		testenv.Refuse("malformed data", ce(), `{"type":"bp",`, 400, "data", "malformed JSON"),
		testenv.Refuse("unknown data field", ce(), `{"type":"bp","text":"hi","x":1}`, 400, "data.x", "unknown field"),
		testenv.Refuse("text not a string", ce(), `{"type":"bp","text":7}`, 400, "data.text", "text must be"),
		testenv.Refuse("data not an object", ce(), `"hi"`, 400, "data", "JSON object"),
		testenv.Refuse("no data", ce(), ``, 400, "data", "event data is empty"),
		testenv.Refuse("data not UTF-8", ce(), "{\"type\":\"bp\",\"text\":\"\xff\"}", 400, "data.text", "UTF-8"),
		testenv.Refuse("unknown event type", ce("ce-type", "dev.cqrs.other"), good, 400, "type", record.EventCreate),
		testenv.Refuse("query sent to write", ce("ce-type", record.EventQuery), good, 400, "type", record.EventCreate),
		testenv.Refuse("missing id", ce("ce-id", ""), good, 400, "id", "id"),
		testenv.Refuse("missing source", ce("ce-source", ""), good, 400, "source", "source"),
		testenv.Refuse("missing type", ce("ce-type", ""), good, 400, "type", "type"),
		testenv.Refuse("missing specversion", ce("ce-specversion", ""), good, 400, "specversion", "ce-specversion"),
		testenv.Refuse("unknown specversion", ce("ce-specversion", "0.1"), good, 400, "specversion", "0.1"),
		testenv.Refuse("plain JSON", testenv.Header("Content-Type", "application/json"), good, 400, "specversion", "not a CloudEvent"),
		testenv.Refuse("data not JSON", ce("Content-Type", "text/plain"), "hi", 415, "datacontenttype", "text/plain"),
		testenv.Refuse("structured without specversion", structured,
			`{"id":"s1","source":"/test","type":"`+record.EventCreate+`","data":`+good+`}`, 400, "specversion", "specversion"),
		testenv.Refuse("structured without id", structured,
			`{"specversion":"1.0","source":"/test","type":"`+record.EventCreate+`","data":`+good+`}`, 400, "id", "id"),
		testenv.Refuse("structured malformed", structured, `{"specversion":"1.0",`, 400, "", "malformed JSON"),
		testenv.Refuse("structured bad data", structured,
			`{"specversion":"1.0","id":"s2","source":"/test","type":"`+record.EventCreate+`","data":{"type":"bp"}}`, 400, "data.text", "text is required"),
		testenv.Refuse("batch", testenv.Header("Content-Type", "application/cloudevents-batch+json"), `[]`, 400, "Content-Type", "one event per request"),
		testenv.Refuse("too large", ce(), `{"type":"bp","text":"`+strings.Repeat("a", serve.MaxBodyBytes)+`"}`, 413, "body", "over"),
		testenv.Refuse("id over 255 bytes", ce("ce-id", strings.Repeat("i", 256)), good, 400, "id", "at most 255"),
		testenv.Refuse("source over 255 bytes", ce("ce-source", "/"+strings.Repeat("s", 255)), good, 400, "source", "at most 255"),
		testenv.Refuse("specversion 0.3", ce("ce-specversion", "0.3"), good, 400, "specversion", "send 1.0"),
		testenv.Refuse("structured specversion 0.3", structured,
			`{"specversion":"0.3","id":"s3","source":"/test","type":"`+record.EventCreate+`","data":`+good+`}`, 400, "specversion", "send 1.0"),
		testenv.Refuse("data and data_base64", structured,
			`{"specversion":"1.0","id":"s4","source":"/test","type":"`+record.EventCreate+`","data":`+good+
				`,"data_base64":"eyJ0eXBlIjoiYnAiLCJ0ZXh0IjoieCJ9"}`, 400, "data_base64", "not both"),
		testenv.Refuse("lone surrogate in text", ce(), `{"type":"bp","text":"a\ud800b"}`, 400, "data.text", "surrogate"),
		testenv.Refuse("repeated data key", ce(), `{"type":"bp","text":"a","text":"b"}`, 400, "data.text", "more than once"),
	})
	resp, _ := testenv.Do(t, http.MethodGet, fx.srv.URL+"/", nil, "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET / = %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if p, seq := fx.stored(t); len(p.Records) != 0 || seq != 0 {
		t.Errorf("refused events stored %d records (seq %d), want none", len(p.Records), seq)
	}
	if m := testenv.Metrics(t, fx.srv.URL, ""); !m[`cqrs_events_total{outcome="unknown_type",type="other"} 2`] {
		t.Errorf("metrics lack the 2 valid events of another type")
	}
}

// TestCreateEventRefusedBySDKClient checks what the SDK's own client sees, in both
// modes, for events the function refuses.
func TestCreateEventRefusedBySDKClient(t *testing.T) {
	fx := evStart(t, nil)
	for _, m := range modes {
		wrongType := testenv.Event(record.EventCreate, "/test", "w1", record.Create{Type: "bp", Text: "x"})
		wrongType.SetType("dev.cqrs.unknown")
		badData := testenv.Event(record.EventCreate, "/test", "w2", map[string]string{"type": "bp"})
		for _, e := range []cloudevents.Event{wrongType, badData} {
			out, status := fx.send(t, m.force, e)
			if status != http.StatusBadRequest || out != nil {
				t.Errorf("%s %s: status %d, reply %v; want 400 and no event", m.name, e.ID(), status, out)
			}
		}
	}
}

// TestCreateEventRedisDown: with the master gone, events get 503 and Retry-After,
// which Knative's delivery retries; once the master is back, the retry stores the
// record.
func TestCreateEventRedisDown(t *testing.T) {
	fx := evStart(t, nil)
	in := testenv.Event(record.EventCreate, "/test", "while-down", record.Create{Type: "bp", Text: "retry me"})
	if err := fx.master.Kill(); err != nil {
		t.Fatal(err)
	}
	_, status := fx.send(t, binding.WithForceStructured, in)
	if status != http.StatusServiceUnavailable {
		t.Errorf("SDK client: status %d, want 503", status)
	}
	resp, body := rawPost(t, fx.srv.URL, testenv.Header("ce-specversion", "1.0", "ce-id", "while-down", "ce-source", "/test",
		"ce-type", record.EventCreate), `{"type":"bp","text":"retry me"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("raw: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	var got serve.ErrorBody
	if err := json.Unmarshal(body, &got); err != nil || got.Error == "" {
		t.Errorf("503 body %s: want a JSON error (%v)", body, err)
	}

	if m := testenv.Metrics(t, fx.srv.URL, ""); !m[`cqrs_events_total{outcome="unavailable",type="dev.cqrs.record.create"} 2`] {
		t.Errorf("metrics lack the 2 events refused while Redis was down")
	}

	if err := fx.master.Start(); err != nil {
		t.Fatal(err)
	}
	var out *cloudevents.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, status = fx.send(t, binding.WithForceBinary, in)
		if status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != http.StatusOK {
		t.Fatalf("after restart: status %d, want 200", status)
	}
	if r := replyRecord(t, out); r.Text != "retry me" {
		t.Errorf("record %+v, want text %q", r, "retry me")
	}
}

func TestCreateEventSourceIsKeptAsSent(t *testing.T) {
	// "/a b" and "/a%20b" are different sources, though a URI parser makes the first
	// into the second: events from them with the same id are two events.
	fx := evStart(t, nil)
	for _, src := range []string{"/a b", "/a%20b"} {
		h := testenv.Header("ce-specversion", "1.0", "ce-id", "same-id", "ce-source", src, "ce-type", record.EventCreate,
			"Content-Type", "application/json")
		resp, body := rawPost(t, fx.srv.URL, h, `{"type":"bp","text":"from `+src+`"}`)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Replayed") == "true" {
			t.Fatalf("source %q: %d replayed=%q %s, want 200 and a new record", src, resp.StatusCode, resp.Header.Get("Ce-Replayed"), body)
		}
	}
	if p, seq := fx.stored(t); len(p.Records) != 2 || seq != 2 {
		t.Errorf("store holds %d records, seq %d; want 2 and 2", len(p.Records), seq)
	}
}

// TestCreateEventIDsAreNeverMerged: ids that a lenient decoder would all turn into
// U+FFFD (two lone surrogate escapes, bytes that are no UTF-8) are refused, naming
// the attribute, in both modes; a literal U+FFFD is an id of its own. No event is
// answered with another's record.
func TestCreateEventIDsAreNeverMerged(t *testing.T) {
	fx := evStart(t, nil)
	structured := func(id string) (*http.Response, []byte) {
		return rawPost(t, fx.srv.URL, testenv.Header("Content-Type", "application/cloudevents+json"),
			`{"specversion":"1.0","id":"`+id+`","source":"/same","type":"`+record.EventCreate+`","data":{"type":"bp","text":"same data"}}`)
	}
	binary := func(id string) (*http.Response, []byte) {
		return rawPost(t, fx.srv.URL, testenv.Header("ce-specversion", "1.0", "ce-id", id, "ce-source", "/same",
			"ce-type", record.EventCreate, "Content-Type", "application/json"), `{"type":"bp","text":"same data"}`)
	}
	for _, id := range []string{`\ud800`, `\udbff`, `\udc00`, "a\xffb"} {
		resp, body := structured(id)
		testenv.WantError(t, resp, body, http.StatusBadRequest, "id", "")
	}
	for _, id := range []string{"\xed\xa0\x80", "\xed\xaf\xbf", "a\xffb"} {
		resp, body := binary(id)
		testenv.WantError(t, resp, body, http.StatusBadRequest, "id", "UTF-8")
	}
	for i, send := range []func(string) (*http.Response, []byte){structured, binary} {
		resp, body := send("\uFFFD")
		replayed := resp.Header.Get("Ce-Replayed")
		if i == 0 {
			var env struct{ Replayed bool }
			json.Unmarshal(body, &env)
			replayed = strconv.FormatBool(env.Replayed)
		}
		if want := []string{"false", "true"}[i]; resp.StatusCode != http.StatusOK || replayed != want {
			t.Errorf("id U+FFFD, delivery %d: %d %s, want 200 with replayed %s", i+1, resp.StatusCode, body, want)
		}
	}
	if p, seq := fx.stored(t); len(p.Records) != 1 || seq != 1 {
		t.Errorf("store holds %d records, seq %d; want the one of id U+FFFD", len(p.Records), seq)
	}
}

// TestCreateEventRepeatedKeysRefused: an attribute given twice, as a header or as a
// member of the envelope, is refused naming it; nothing is stored.
func TestCreateEventRepeatedKeysRefused(t *testing.T) {
	fx := evStart(t, nil)
	good := `{"type":"bp","text":"hi"}`
	envelope := func(more string) string {
		return `{"specversion":"1.0","id":"r1","source":"/test","type":"` + record.EventCreate + `","data":` + good + more + `}`
	}
	structured := testenv.Header("Content-Type", "application/cloudevents+json")
	twice := func(name, a, b string) http.Header {
		h := testenv.Header("ce-specversion", "1.0", "ce-id", "r2", "ce-source", "/test", "ce-type", record.EventCreate,
			"Content-Type", "application/json")
		h.Del(name)
		h.Add(name, a)
		h.Add(name, b)
		return h
	}
	testenv.WantRefusals(t, fx.srv.URL+"/", []testenv.Refusal{
		testenv.Refuse("two data", structured, envelope(`,"data":{"type":"bp","text":"other"}`), 400, "data", "more than once"),
		testenv.Refuse("two ids", structured, envelope(`,"id":"r9"`), 400, "id", "more than once"),
		testenv.Refuse("two subjects", structured, envelope(`,"subject":"a","subject":"b"`), 400, "subject", "more than once"),
		testenv.Refuse("two of an extension", structured, envelope(`,"trace":"a","trace":"b"`), 400, "trace", "more than once"),
		testenv.Refuse("Ce-Type twice", twice("Ce-Type", record.EventCreate, record.EventQuery), good, 400, "type", "given 2 times"),
		testenv.Refuse("Ce-Type twice, the same", twice("Ce-Type", record.EventCreate, record.EventCreate), good, 400, "type", "given 2 times"),
		testenv.Refuse("Ce-Specversion twice", twice("Ce-Specversion", "1.0", "0.3"), good, 400, "specversion", "given 2 times"),
		testenv.Refuse("Ce-Id twice", twice("Ce-Id", "a", "b"), good, 400, "id", "given 2 times"),
		testenv.Refuse("Ce-Subject twice", twice("Ce-Subject", "a", "b"), good, 400, "subject", "given 2 times"),
	})
	if p, seq := fx.stored(t); len(p.Records) != 0 || seq != 0 {
		t.Errorf("refused events stored %d records (seq %d), want none", len(p.Records), seq)
	}
}

func TestCreatedEventSaysWhetherReplicated(t *testing.T) {
	// Under WRITE_REPLICAS > 0 a Broker sender sees only the reply event: it carries
	// the replicated extension, as HTTP carries X-Replicated.
	pair := testenv.Redis(t)
	srv := server(t, pair.Master, func(c *write.Config) {
		c.WriteReplicas = 1
		c.WriteWaitTimeout = 200 * time.Millisecond
	})
	send := func(id string) http.Header {
		h := testenv.Header("ce-specversion", "1.0", "ce-id", id, "ce-source", "/test", "ce-type", record.EventCreate,
			"Content-Type", "application/json")
		resp, body := rawPost(t, srv.URL, h, `{"type":"bp","text":"`+id+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", id, resp.StatusCode, body)
		}
		return resp.Header
	}
	if got := send("with-replica").Get("Ce-Replicated"); got != "true" {
		t.Errorf("with a live replica: ce-replicated %q, want true", got)
	}
	pair.Replica.Kill()
	if got := send("without-replica").Get("Ce-Replicated"); got != "false" {
		t.Errorf("with the replica down: ce-replicated %q, want false", got)
	}
	plain := evStart(t, nil)
	h := testenv.Header("ce-specversion", "1.0", "ce-id", "plain", "ce-source", "/test", "ce-type", record.EventCreate,
		"Content-Type", "application/json")
	resp, _ := rawPost(t, plain.srv.URL, h, `{"type":"bp","text":"x"}`)
	if _, ok := resp.Header["Ce-Replicated"]; ok {
		t.Errorf("WRITE_REPLICAS=0: the reply carries ce-replicated %q, want no such extension", resp.Header.Get("Ce-Replicated"))
	}
}
