package read_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// evFixture is the read function's fixture with a CloudEvents client to send with.
type evFixture struct {
	*fixture
	client cloudevents.Client
}

func evStart(t *testing.T, edit func(*read.Config)) *evFixture {
	t.Helper()
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	return &evFixture{fixture: start(t, edit), client: c}
}

func (fx *evFixture) put(t *testing.T, typ, text string) record.Record {
	t.Helper()
	return fx.create(t, typ, text)
}

var modes = []struct {
	name  string
	force func(context.Context) context.Context
}{
	{"binary", binding.WithForceBinary},
	{"structured", binding.WithForceStructured},
}

func queryEvent(id string, data any) cloudevents.Event {
	return testenv.Event(record.EventQuery, "/test", id, data)
}

type resultPage struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"nextCursor"`
}

// ask sends e with the SDK's client and returns the reply, its page, and the status.
func (fx *evFixture) ask(t *testing.T, force func(context.Context) context.Context, e cloudevents.Event) (*cloudevents.Event, resultPage, int) {
	t.Helper()
	out, status := testenv.Deliver(t, fx.client, fx.srv.URL+"/", force, e)
	if status == 0 {
		t.FailNow()
	}
	var p resultPage
	if out != nil {
		if err := out.DataAs(&p); err != nil {
			t.Fatalf("reply data %s: %v", out.Data(), err)
		}
	}
	return out, p, status
}

func texts(rs []record.Record) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Text
	}
	return strings.Join(s, ",")
}

func TestQueryEvent(t *testing.T) {
	t.Setenv("K_SERVICE", "")
	fx := evStart(t, nil)
	fx.put(t, "bp", "first post")
	fx.put(t, "cmt", "a comment")
	fx.put(t, "bp", "second post")
	last := fx.put(t, "bp", "third post")
	tests := []struct {
		name string
		data any
		want string
		next bool
	}{
		{"newest of a type", map[string]any{"type": "bp", "limit": 2, "minSeq": last.Seq}, "third post,second post", true},
		{"words", map[string]any{"q": "POST first"}, "first post", false},
		{"no data", nil, "third post,second post,a comment,first post", false},
		{"cursor", map[string]any{"type": "bp", "limit": 2, "cursor": strconv.FormatInt(last.Seq-1, 10)}, "first post", false},
	}
	for _, m := range modes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				out, p, status := fx.ask(t, m.force, queryEvent("q-"+tt.name, tt.data))
				if status != http.StatusOK || out == nil {
					t.Fatalf("status %d, reply %v; want 200 with an event", status, out)
				}
				if got := texts(p.Records); got != tt.want {
					t.Errorf("records %q, want %q", got, tt.want)
				}
				if (p.NextCursor != "") != tt.next {
					t.Errorf("nextCursor %q, want one: %v", p.NextCursor, tt.next)
				}
				ext := out.Extensions()
				seq, _ := strconv.ParseInt(fmt.Sprint(ext[read.ExtReplicaSeq]), 10, 64)
				checks := []struct{ what, got, want string }{
					{"type", out.Type(), record.EventResult},
					{"source", out.Source(), read.DefaultEventSource},
					{"servedby", fmt.Sprint(ext[read.ExtServedBy]), read.ServedByReplica},
					{"replicaseq", strconv.FormatInt(seq, 10), strconv.FormatInt(last.Seq, 10)},
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("reply %s = %q, want %q", c.what, c.got, c.want)
					}
				}
			})
		}
	}
}

// TestQueryEventReadsItsOwnWrites: a query event with the seq of a record written a
// moment ago finds that record, from the replica once it has caught up.
func TestQueryEventReadsItsOwnWrites(t *testing.T) {
	fx := evStart(t, nil)
	for i := range 20 {
		word := fmt.Sprintf("fresh%d", i)
		r := fx.put(t, "rvw", "just written "+word)
		out, p, status := fx.ask(t, modes[i%2].force, queryEvent("own-"+word, map[string]any{"q": word, "minSeq": r.Seq}))
		if status != http.StatusOK {
			t.Fatalf("status %d, want 200", status)
		}
		if len(p.Records) != 1 || p.Records[0].ID != r.ID {
			t.Fatalf("query for %s with minSeq %d found %q, want the record just written", word, r.Seq, texts(p.Records))
		}
		if seq, _ := strconv.ParseInt(fmt.Sprint(out.Extensions()[read.ExtReplicaSeq]), 10, 64); seq < r.Seq {
			t.Errorf("replicaseq %d, want at least minSeq %d", seq, r.Seq)
		}
	}
}

// TestQueryEventMinSeqAhead: a minSeq no Redis has reached is answered by the master
// with READ_FALLBACK=master, and with 503 and Retry-After (retried by the Broker)
// with READ_FALLBACK=none.
func TestQueryEventMinSeqAhead(t *testing.T) {
	for _, tt := range []struct {
		fallback string
		status   int
		servedBy string
	}{
		{read.FallbackMaster, http.StatusBadRequest, ""},
		{read.FallbackNone, http.StatusServiceUnavailable, ""},
	} {
		t.Run(tt.fallback, func(t *testing.T) {
			fx := evStart(t, func(c *read.Config) { c.ReadFallback, c.ReadMaxWait = tt.fallback, 20*time.Millisecond })
			r := fx.put(t, "bp", "only one")
			out, _, status := fx.ask(t, binding.WithForceBinary, queryEvent("ahead", map[string]any{"minSeq": r.Seq + 100}))
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			if out != nil {
				if got := fmt.Sprint(out.Extensions()[read.ExtServedBy]); got != tt.servedBy {
					t.Errorf("servedby %q, want %q", got, tt.servedBy)
				}
			}
			if tt.status == http.StatusServiceUnavailable {
				resp, _ := evRaw(t, fx.srv.URL, testenv.Header("ce-specversion", "1.0", "ce-id", "ahead", "ce-source", "/test",
					"ce-type", record.EventQuery, "Content-Type", "application/json"), fmt.Sprintf(`{"minSeq":%d}`, r.Seq+100))
				if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") == "" {
					t.Errorf("raw: status %d, Retry-After %q; want %d with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), tt.status)
				}
			}
		})
	}
}

func TestQueryEventReplyHeaders(t *testing.T) {
	fx := evStart(t, nil)
	r := fx.put(t, "bp", "headers too")
	resp, body := evRaw(t, fx.srv.URL, testenv.Header("Content-Type", "application/cloudevents+json"),
		`{"specversion":"1.0","id":"h","source":"/raw","type":"`+record.EventQuery+`","data":{"limit":1}}`)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cloudevents+json") {
		t.Fatalf("status %d, content type %q; want 200 structured", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("X-Served-By") != read.ServedByReplica || resp.Header.Get("X-Replica-Seq") != strconv.FormatInt(r.Seq, 10) {
		t.Errorf("X-Served-By %q, X-Replica-Seq %q; want replica, %d", resp.Header.Get("X-Served-By"), resp.Header.Get("X-Replica-Seq"), r.Seq)
	}
	var env struct {
		Type       string     `json:"type"`
		ServedBy   string     `json:"servedby"`
		ReplicaSeq string     `json:"replicaseq"`
		Data       resultPage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Type != record.EventResult || env.ServedBy != read.ServedByReplica ||
		env.ReplicaSeq != strconv.FormatInt(r.Seq, 10) || texts(env.Data.Records) != "headers too" {
		t.Errorf("reply %s (%v): want %s from the replica at seq %d with the record as data", body, err, record.EventResult, r.Seq)
	}
}

func evRaw(t *testing.T, url string, h http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	return testenv.Do(t, http.MethodPost, url+"/", h, body)
}

func TestQueryEventRefused(t *testing.T) {
	fx := evStart(t, nil)
	ce := func(id, specversion, typ string) http.Header {
		return testenv.Header("ce-specversion", specversion, "ce-id", id, "ce-source", "/test", "ce-type", typ, "Content-Type", "application/json")
	}
	ok := ce("x", "1.0", record.EventQuery)
	testenv.WantRefusals(t, fx.srv.URL+"/", []testenv.Refusal{
		testenv.Refuse("limit zero", ok, `{"limit":0}`, 400, "data.limit", "1 to 100"),
		testenv.Refuse("limit too big", ok, `{"limit":101}`, 400, "data.limit", "1 to 100"),
		testenv.Refuse("limit as string", ok, `{"limit":"5"}`, 400, "data.limit", "whole number"),
		testenv.Refuse("limit fraction", ok, `{"limit":1.5}`, 400, "data.limit", "whole number"),
		testenv.Refuse("cursor not ours", ok, `{"cursor":"abc"}`, 400, "data.cursor", "nextCursor"),
		testenv.Refuse("cursor as number", ok, `{"cursor":5}`, 400, "data.cursor", "string"),
		testenv.Refuse("negative minSeq", ok, `{"minSeq":-1}`, 400, "data.minSeq", "whole number"),
		testenv.Refuse("unknown record type", ok, `{"type":"poem"}`, 400, "data.type", "unknown type"),
		testenv.Refuse("no words", ok, `{"q":"!!"}`, 400, "data.q", "no words"),
		testenv.Refuse("unknown field", ok, `{"max":5}`, 400, "data.max", "unknown field"),
		testenv.Refuse("not an object", ok, `[1]`, 400, "data", "JSON object"),
		testenv.Refuse("malformed", ok, `{"limit":`, 400, "data", "malformed JSON"),
		testenv.Refuse("repeated key", ok, `{"limit":5,"limit":6}`, 400, "data.limit", "more than once"),
		testenv.Refuse("lone surrogate in q", ok, `{"q":"\udc00x"}`, 400, "data.q", "surrogate"),
		testenv.Refuse("minSeq beyond the store", ok, `{"minSeq":999}`, 400, "data.minSeq", "beyond the newest seq"),
		testenv.Refuse("specversion 0.3", ce("x", "0.3", record.EventQuery), `{}`, 400, "specversion", "send 1.0"),
		testenv.Refuse("create sent to read", ce("x", "1.0", record.EventCreate), `{}`, 400, "type", record.EventQuery),
		testenv.Refuse("unknown event type", ce("x", "1.0", "com.example.nope"), `{}`, 400, "type", record.EventQuery),
		testenv.Refuse("missing id", ce("", "1.0", record.EventQuery), `{}`, 400, "id", "id"),
		testenv.Refuse("missing specversion", ce("x", "", record.EventQuery), `{}`, 400, "specversion", "ce-specversion"),
		testenv.Refuse("structured without specversion", testenv.Header("Content-Type", "application/cloudevents+json"),
			`{"id":"s","source":"/test","type":"`+record.EventQuery+`"}`, 400, "specversion", "specversion"),
		testenv.Refuse("data not JSON", testenv.Header("ce-specversion", "1.0", "ce-id", "x", "ce-source", "/test", "ce-type", record.EventQuery,
			"Content-Type", "application/xml"), `<q/>`, 415, "datacontenttype", "application/xml"),
		testenv.Refuse("too large", ok, `{"q":"`+strings.Repeat("a ", serve.MaxBodyBytes/2)+`"}`, 413, "body", "over"),
	})
	// The SDK's client, in both modes, sees the same 400.
	for _, m := range modes {
		bad := queryEvent("sdk-bad", map[string]any{"limit": 0})
		if out, _, status := fx.ask(t, m.force, bad); status != http.StatusBadRequest || out != nil {
			t.Errorf("%s: status %d, reply %v; want 400 and no event", m.name, status, out)
		}
	}
	// Prefixes of metric lines; the invalid count depends on the cases above.
	for _, w := range []string{
		`cqrs_events_total{outcome="unknown_type",type="other"} 2`,
		`cqrs_events_total{outcome="invalid",type="dev.cqrs.records.query"} `,
	} {
		if len(testenv.Metrics(t, fx.srv.URL, w)) == 0 {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// TestQueryEventRedisDown: with the replica gone and no fallback, a query event gets
// 503 with Retry-After, never a hang or a 500.
func TestQueryEventRedisDown(t *testing.T) {
	fx := evStart(t, func(c *read.Config) { c.ReadFallback = read.FallbackNone })
	if err := fx.pair.Replica.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, m := range modes {
		if _, _, status := fx.ask(t, m.force, queryEvent("down", nil)); status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", m.name, status)
		}
	}
	resp, body := evRaw(t, fx.srv.URL, testenv.Header("ce-specversion", "1.0", "ce-id", "down", "ce-source", "/test", "ce-type", record.EventQuery), "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("raw: status %d, Retry-After %q, body %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}
