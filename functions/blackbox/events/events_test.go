package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// stack is the two built functions running on a real master and replica.
type stack struct {
	write, read *launch.Proc
	client      cloudevents.Client
}

func start(t *testing.T) *stack {
	t.Helper()
	testenv.RequireRedis(t)
	wbin := testenv.Build(t, "./functions/cmd/cqrs-write")
	rbin := testenv.Build(t, "./functions/cmd/cqrs-read")
	b := testenv.StartBackend(t)
	w := testenv.Start(t, wbin, append(b.WriteEnv(), "K_SERVICE=cqrs-write")...)
	r := testenv.Start(t, rbin, append(b.ReadEnv(), "K_SERVICE=cqrs-read")...)
	testenv.Ready(t, w, 10*time.Second)
	testenv.Ready(t, r, 10*time.Second)
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	return &stack{write: w, read: r, client: c}
}

var (
	binary     = binding.WithForceBinary
	structured = binding.WithForceStructured
)

// deliver posts e to the process at url as a Broker would and returns the reply
// event and the HTTP status (0 when nothing answered).
func (s *stack) deliver(t *testing.T, url string, mode func(context.Context) context.Context, e cloudevents.Event) (*cloudevents.Event, int) {
	t.Helper()
	return testenv.Deliver(t, s.client, url+"/", mode, e)
}

type page struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"nextCursor"`
}

// created is the data of a create's reply: the record and the token that reads it.
type created struct {
	record.Record
	Token string `json:"token"`
}

func (s *stack) create(t *testing.T, mode func(context.Context) context.Context, id, text string) created {
	t.Helper()
	out, status := s.deliver(t, s.write.URL(), mode, testenv.Event(record.EventCreate, "/test/broker", id, record.Create{Type: "bp", Text: text}))
	if status != http.StatusOK || out == nil {
		t.Fatalf("create %s: status %d, reply %v; want 200 with an event", id, status, out)
	}
	if out.Type() != record.EventCreated || out.Source() != "cqrs-write" {
		t.Errorf("create reply type %q source %q, want %s from cqrs-write", out.Type(), out.Source(), record.EventCreated)
	}
	var r created
	if err := out.DataAs(&r); err != nil {
		t.Fatalf("create reply data %s: %v", out.Data(), err)
	}
	if tok := fmt.Sprint(out.Extensions()[record.TokenExtension]); tok != r.Token || r.Token == "" {
		t.Errorf("create reply: %s %q and data token %q, want both, equal", record.TokenExtension, tok, r.Token)
	}
	return r
}

func (s *stack) query(t *testing.T, mode func(context.Context) context.Context, id string, data map[string]any) (*cloudevents.Event, page) {
	t.Helper()
	out, status := s.deliver(t, s.read.URL(), mode, testenv.Event(record.EventQuery, "/test/broker", id, data))
	if status != http.StatusOK || out == nil {
		t.Fatalf("query %s: status %d, reply %v; want 200 with an event", id, status, out)
	}
	if out.Type() != record.EventResult || out.Source() != "cqrs-read" {
		t.Errorf("query reply type %q source %q, want %s from cqrs-read", out.Type(), out.Source(), record.EventResult)
	}
	var p page
	if err := out.DataAs(&p); err != nil {
		t.Fatalf("query reply data %s: %v", out.Data(), err)
	}
	return out, p
}

func TestCreateThenQuery(t *testing.T) {
	s := start(t)
	for i, m := range []struct {
		name          string
		create, query func(context.Context) context.Context
	}{
		{"binary then structured", binary, structured},
		{"structured then binary", structured, binary},
	} {
		word := fmt.Sprintf("roundtrip%d", i)
		created := s.create(t, m.create, "rt-"+word, "event "+word)
		out, p := s.query(t, m.query, "q-"+word, map[string]any{"q": word, "token": created.Token, "limit": 5})
		if len(p.Records) != 1 || p.Records[0] != created.Record {
			t.Errorf("%s: query found %+v, want exactly the created %+v", m.name, p.Records, created.Record)
		}
		if by := fmt.Sprint(out.Extensions()["servedby"]); by != "replica" && by != "master" {
			t.Errorf("%s: servedby %q, want replica or master", m.name, by)
		}
		// On one master the answer also says how far its Redis had got; a Redis
		// Cluster has a seq per partition, and the answer none.
		seq, has := out.Extensions()["replicaseq"]
		if testenv.OnCluster() == has || (has && fmt.Sprint(seq) != fmt.Sprint(created.Seq)) {
			t.Errorf("%s: replicaseq %v (%v), want %d on one master and none on a cluster", m.name, seq, has, created.Seq)
		}
		if tok := fmt.Sprint(out.Extensions()[record.TokenExtension]); tok == "" || tok == "<nil>" {
			t.Errorf("%s: the result carries no %s", m.name, record.TokenExtension)
		}
	}
}

// TestRedeliveryStoresOnce delivers one event many times, some at once, to the
// running write process, and reads the result back through the read process.
func TestRedeliveryStoresOnce(t *testing.T) {
	s := start(t)
	const deliveries, workers = 200, 8
	in := testenv.Event(record.EventCreate, "/test/broker", "redelivered", record.Create{Type: "bp", Text: "exactly once please"})
	var mu sync.Mutex
	ids := map[string]int{}
	var token string
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				mode := binary
				if i%2 == 1 {
					mode = structured
				}
				out, status := s.deliver(t, s.write.URL(), mode, in)
				id := fmt.Sprintf("status %d", status)
				var r created
				if out != nil && out.DataAs(&r) == nil {
					id = r.ID
				}
				mu.Lock()
				ids[id]++
				token = r.Token
				mu.Unlock()
			}
		})
	}
	for i := range deliveries {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("replies carried %v, want one record id %d times", ids, deliveries)
	}
	var id string
	for k := range ids {
		id = k
	}

	_, p := s.query(t, binary, "count", map[string]any{"q": "exactly once please", "limit": 100, "token": token})
	if len(p.Records) != 1 || p.Records[0].ID != id {
		t.Errorf("read side holds %+v, want the one record %s", p.Records, id)
	}

	metrics := testenv.Metrics(t, s.write.URL(), "cqrs_")
	for _, want := range []string{
		`cqrs_events_total{outcome="created",type="dev.cqrs.record.create"} 1`,
		fmt.Sprintf(`cqrs_events_total{outcome="replayed",type="dev.cqrs.record.create"} %d`, deliveries-1),
	} {
		if !metrics[want] {
			t.Errorf("write metrics lack %q", want)
		}
	}
}

// TestHostileEventsRefused holds the built functions to what an attacker tried: ids
// that a lenient decoder merges into one U+FFFD, repeated attributes in either mode,
// and a repeated consistency header. Each is refused naming what is at fault, or
// (a literal U+FFFD) stored as an event of its own; nothing is merged.
func TestHostileEventsRefused(t *testing.T) {
	s := start(t)
	structured := testenv.Header("Content-Type", "application/cloudevents+json")
	envelope := func(typ, id, more string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"/same","type":"` + typ + `","data":{"type":"bp","text":"same data"}` + more + `}`
	}
	headers := func(typ, id string, twice ...string) http.Header {
		h := testenv.Header("ce-specversion", "1.0", "ce-id", id, "ce-source", "/same", "ce-type", typ, "Content-Type", "application/json")
		for _, name := range twice {
			h.Add(name, h.Get(name))
		}
		return h
	}
	create := record.EventCreate
	for _, fn := range []struct {
		url, typ string
	}{{s.write.URL(), record.EventCreate}, {s.read.URL(), record.EventQuery}} {
		testenv.WantRefusals(t, fn.url+"/", []testenv.Refusal{
			testenv.Refuse("id a lone high surrogate", structured, envelope(fn.typ, `\ud800`, ""), 400, "id", "surrogate"),
			testenv.Refuse("id a lone high surrogate at the end of its range", structured, envelope(fn.typ, `\udbff`, ""), 400, "id", "surrogate"),
			testenv.Refuse("id not UTF-8", structured, envelope(fn.typ, "a\xffb", ""), 400, "id", "UTF-8"),
			testenv.Refuse("ce-id an encoded surrogate", headers(fn.typ, "\xed\xa0\x80"), `{}`, 400, "id", "UTF-8"),
			testenv.Refuse("two data", structured, envelope(fn.typ, "k1", `,"data":{}`), 400, "data", "more than once"),
			testenv.Refuse("two ids", structured, envelope(fn.typ, "k2", `,"id":"k3"`), 400, "id", "more than once"),
			testenv.Refuse("two of any member", structured, envelope(fn.typ, "k4", `,"subject":"a","subject":"b"`), 400, "subject", "more than once"),
			testenv.Refuse("Ce-Type twice", headers(fn.typ, "k5", "Ce-Type"), `{}`, 400, "type", "given 2 times"),
			testenv.Refuse("Ce-Specversion twice", headers(fn.typ, "k6", "Ce-Specversion"), `{}`, 400, "specversion", "given 2 times"),
		})
	}
	var token string
	for i := range 2 {
		resp, body := testenv.Do(t, http.MethodPost, s.write.URL()+"/", structured, envelope(create, "\uFFFD", ""))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("id U+FFFD, delivery %d: %d %s, want 200", i+1, resp.StatusCode, body)
		}
		var reply struct {
			Token string `json:"consistencytoken"`
		}
		json.Unmarshal(body, &reply)
		token = reply.Token
	}
	_, p := s.query(t, binary, "all", map[string]any{"limit": 100, "token": token})
	if len(p.Records) != 1 {
		t.Errorf("the store holds %d records, want 1: the event of id U+FFFD, once", len(p.Records))
	}
	resp, body := testenv.Do(t, http.MethodGet, s.read.URL()+"/records", http.Header{"X-Min-Seq": {"1", "2"}}, "")
	testenv.WantError(t, resp, body, http.StatusBadRequest, "X-Min-Seq", "given 2 times")
}
