//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// brokerClient posts to the Broker's ingress, a cluster Service, keeping the
// ingress URL's host as the Host header.
func brokerClient(t *testing.T) (*http.Client, string) {
	t.Helper()
	out := must(t, time.Minute, "kubectl", "get", "broker", "default", "--namespace", ns, "-o", "jsonpath={.status.address.url}")
	u := strings.TrimSpace(out)
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		t.Fatalf("Broker address %q: %v", u, err)
	}
	// broker-ingress.knative-eventing.svc.cluster.local
	parts := strings.Split(pu.Hostname(), ".")
	if len(parts) < 2 {
		t.Fatalf("Broker address %q is not a cluster Service", u)
	}
	addr := serviceAddr(t, parts[1], parts[0], 80)
	return &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
		}},
	}, u
}

// sinkEvent is an event the test's sink received from a Trigger.
type sinkEvent struct {
	Type, Source, ID string
	Extensions       map[string]any
	Data             json.RawMessage
}

// reply tells the write function's reply to a create event (which carries the
// extension replayed) from the outbox's event for the same record (which does not).
func (e sinkEvent) reply() bool {
	_, ok := e.Extensions["replayed"]
	return ok
}

// replies and published split the dev.cqrs.record.created events of one record.
func replies(evs []sinkEvent) (out []sinkEvent) {
	for _, e := range evs {
		if e.reply() {
			out = append(out, e)
		}
	}
	return out
}

func published(evs []sinkEvent) (out []sinkEvent) {
	for _, e := range evs {
		if !e.reply() {
			out = append(out, e)
		}
	}
	return out
}

type sink struct {
	mu     sync.Mutex
	events []sinkEvent
	url    string
}

// startSink serves an event sink on this machine at an address the cluster's
// pods reach (the node's address on the local cluster), for the whole suite.
func startSink() (*sink, error) {
	host := os.Getenv("CQRS_E2E_SINK_HOST")
	if host == "" && local && ingress != "" {
		host, _, _ = net.SplitHostPort(ingress)
	}
	if host == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, sinkEvent{ev.Type(), ev.Source(), ev.ID(), ev.Extensions(), ev.Data()})
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// find returns the events of the type whose data contains s.
func (s *sink) find(typ, contains string) []sinkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sinkEvent
	for _, e := range s.events {
		if e.Type == typ && strings.Contains(string(e.Data), contains) {
			out = append(out, e)
		}
	}
	return out
}

// The sink's Triggers live as long as the suite: with the in-memory channel, a
// Trigger deleted while events flow can stay in the channel's subscribers for a
// while, and the Broker then answers 500 to every sender.
const sinkTriggerPrefix = "e2e-sink-"

// subscribeSink makes one Trigger per reply type on the Broker, delivering to the
// sink, with kn as a user would.
func subscribeSink(s *sink, types ...string) error {
	for _, typ := range types {
		name := sinkTriggerPrefix + strings.ReplaceAll(strings.TrimPrefix(typ, "dev.cqrs."), ".", "-")
		if out, err := command(time.Minute, "kn", "trigger", "create", name, "--namespace", ns, "--broker", "default",
			"--filter", "type="+typ, "--sink", s.url); err != nil {
			return fmt.Errorf("kn trigger create %s: %v\n%s", name, err, out)
		}
		if out, err := command(2*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=90s", "trigger/"+name); err != nil {
			return fmt.Errorf("trigger %s: %v\n%s", name, err, out)
		}
	}
	return nil
}

// removeSinkTriggers deletes the suite's Triggers (also those a stopped run left).
func removeSinkTriggers() {
	out, _ := command(time.Minute, "kubectl", "get", "triggers", "--namespace", ns, "-o", "name")
	for _, n := range strings.Fields(out) {
		if strings.HasPrefix(strings.TrimPrefix(n, "trigger.eventing.knative.dev/"), sinkTriggerPrefix) {
			_, _ = command(time.Minute, "kubectl", "delete", "--namespace", ns, n)
		}
	}
}

// postBinary posts a binary-mode CloudEvent and fails the test unless the Broker's
// ingress accepts it (2xx).
func postBinary(t *testing.T, c *http.Client, u, typ, source, id, data string) answer {
	t.Helper()
	return postEvent(t, c, u, typ, testenv.Header("Ce-Specversion", "1.0", "Ce-Type", typ, "Ce-Source", source, "Ce-Id", id,
		"Content-Type", "application/json"), data)
}

// postStructured posts a structured-mode CloudEvent, as postBinary does.
func postStructured(t *testing.T, c *http.Client, u, typ, source, id, data string) answer {
	t.Helper()
	body := fmt.Sprintf(`{"specversion":"1.0","type":%q,"source":%q,"id":%q,"datacontenttype":"application/json","data":%s}`, typ, source, id, data)
	return postEvent(t, c, u, typ, testenv.Header("Content-Type", "application/cloudevents+json"), body)
}

func postEvent(t *testing.T, c *http.Client, u, typ string, h http.Header, body string) answer {
	t.Helper()
	a, err := send(t, c, "POST", u, h, body)
	if err != nil {
		t.Fatalf("post %s to the Broker: %v", typ, err)
	}
	if a.status < 200 || a.status > 299 {
		t.Fatalf("Broker ingress, %s: got %s, want 2xx", typ, a)
	}
	return a
}

// stored waits until cqrs-read finds exactly the records holding the word, and
// returns them.
func stored(t *testing.T, word string, want int, within time.Duration) []record {
	t.Helper()
	var got []record
	eventually(t, fmt.Sprintf("%d record(s) with %q readable through cqrs-read", want, word), within, 200*time.Millisecond, func() bool {
		p, a := query(t, url.Values{"q": {word}})
		got = p.Records
		return a.status == http.StatusOK && len(p.Records) >= want
	})
	return got
}

// TestBroker: Broker -> Trigger -> function, with the Broker's ingress as the
// entry: a create event is stored and readable, the same event twice is stored
// once, a query event's reply comes back through the Broker.
func TestBroker(t *testing.T) {
	c, brokerURL := brokerClient(t)
	s := suiteSink
	if s == nil {
		t.Skip("no address of this machine that the cluster's pods reach: set CQRS_E2E_SINK_HOST")
	}

	t.Run("create binary", func(t *testing.T) {
		word := nonce()
		start := time.Now()
		a := postBinary(t, c, brokerURL, "dev.cqrs.record.create", "e2e/broker", "create-"+word, fmt.Sprintf(`{"type":"bp","text":"via the broker %s"}`, word))
		post := time.Since(start)
		got := stored(t, word, 1, 30*time.Second)
		readable := time.Since(start)
		if len(got) != 1 || got[0].Type != "bp" {
			t.Fatalf("got %+v, want one bp record", got)
		}
		// The reply, and the outbox's event for the same record (the SinkBinding of
		// knative/outbox.yaml gives cqrs-write the Broker as K_SINK): one id.
		eventually(t, "the created reply and the published event at the sink", 30*time.Second, 100*time.Millisecond, func() bool {
			evs := s.find("dev.cqrs.record.created", word)
			return len(replies(evs)) == 1 && len(published(evs)) == 1
		})
		for _, e := range s.find("dev.cqrs.record.created", word) {
			if e.ID != got[0].ID || e.Source != "cqrs-write" {
				t.Errorf("event (reply %v) id %q source %q, want the record's id %q and source cqrs-write", e.reply(), e.ID, e.Source, got[0].ID)
			}
		}
		fmt.Printf("e2e measured: Broker create (binary): ingress answered %d in %s, readable through cqrs-read after %s\n",
			a.status, post.Round(time.Millisecond), readable.Round(time.Millisecond))
	})

	t.Run("same event twice, stored once (structured)", func(t *testing.T) {
		word := nonce()
		data := fmt.Sprintf(`{"type":"cmt","text":"twice through the broker %s"}`, word)
		for range 2 {
			postStructured(t, c, brokerURL, "dev.cqrs.record.create", "e2e/broker", "dup-"+word, data)
		}
		stored(t, word, 1, 30*time.Second)
		// Both deliveries answered; give the second one time to land, then count.
		// The record is published once besides, with the replies' id.
		eventually(t, "two created replies and one published event", 30*time.Second, 100*time.Millisecond, func() bool {
			evs := s.find("dev.cqrs.record.created", word)
			return len(replies(evs)) == 2 && len(published(evs)) == 1
		})
		got := stored(t, word, 1, 5*time.Second)
		if len(got) != 1 {
			t.Fatalf("got %d records for one event delivered twice, want 1: %+v", len(got), got)
		}
		evs := s.find("dev.cqrs.record.created", word)
		for _, e := range evs {
			if e.ID != got[0].ID || !strings.Contains(string(e.Data), got[0].ID) {
				t.Errorf("every event of the one record %s should carry its id: reply %v, id %q, data %s", got[0].ID, e.reply(), e.ID, e.Data)
			}
		}
		r := replies(evs)
		flags := []string{fmt.Sprint(r[0].Extensions["replayed"]), fmt.Sprint(r[1].Extensions["replayed"])}
		if slices.Sort(flags); flags[0] != "false" || flags[1] != "true" {
			t.Errorf("replies: replayed %v, want false for one and true for the other", flags)
		}
	})

	t.Run("query reply", func(t *testing.T) {
		word := nonce()
		r := create(t, "rvw", "queried through the broker "+word)
		start := time.Now()
		postBinary(t, c, brokerURL, "dev.cqrs.records.query", "e2e/broker", "query-"+word,
			fmt.Sprintf(`{"q":%q,"minSeq":%d}`, word, r.Seq))
		eventually(t, "the query's result event at the sink", 30*time.Second, 100*time.Millisecond, func() bool {
			return len(s.find("dev.cqrs.records.result", r.ID)) == 1
		})
		fmt.Printf("e2e measured: Broker query: result event back at the subscriber after %s\n", time.Since(start).Round(time.Millisecond))
	})
}

// TestBrokerToZero: an event for a function scaled to zero is delivered (the
// activator holds it while a pod starts) and stored.
func TestBrokerToZero(t *testing.T) {
	c, brokerURL := brokerClient(t)
	rev := revisionOf(t, "cqrs-write")
	// Whatever ran last, wait for the write function to be at zero.
	z := waitForZero(t, rev, time.Now())
	t.Logf("cqrs-write at 0 pods after waiting %s", z.toNoPods.Round(time.Second))
	word := nonce()
	start := time.Now()
	a := postBinary(t, c, brokerURL, "dev.cqrs.record.create", "e2e/zero", "zero-"+word, fmt.Sprintf(`{"type":"bp","text":"woke the function %s"}`, word))
	post := time.Since(start)
	stored(t, word, 1, 60*time.Second)
	fmt.Printf("e2e measured: Broker create to cqrs-write at zero: ingress answered %d in %s, readable after %s\n",
		a.status, post.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
