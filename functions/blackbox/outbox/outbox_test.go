package outbox

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// post sends body to url as JSON with the headers kv, and returns the status, the
// headers and the body.
func post(t *testing.T, url, body string, kv ...string) (int, http.Header, []byte) {
	t.Helper()
	h := testenv.Header(append([]string{"Content-Type", "application/json"}, kv...)...)
	resp, b := testenv.Do(t, http.MethodPost, url, h, body)
	return resp.StatusCode, resp.Header, b
}

// metric returns the value of the metric line name (with its labels) of p.
func metric(t *testing.T, p *launch.Proc, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// byText finds the event whose record has text.
func byText(events []event, text string) (event, int) {
	n, found := 0, event{}
	for _, e := range events {
		var r record.Record
		if json.Unmarshal(e.data, &r) == nil && r.Text == text {
			n++
			found = e
		}
	}
	return found, n
}

// TestEveryDoorPublishesOnce: a record created through each door (POST /records,
// the UI's /api/records and /add, a CloudEvent) arrives at the sink exactly once, as
// dev.cqrs.record.created with the record as data and its token, in seq order; the
// reply to the CloudEvent create carries the same id and source as the record's
// event, so a consumer that drops duplicates by id sees it once. A PingSource event
// is answered at once.
func TestEveryDoorPublishesOnce(t *testing.T) {
	sk := newSink(t)
	s := testenv.StartStack(t, testenv.StackOptions{Env: []string{"K_SINK=" + sk.srv.URL}})
	texts := []string{"through POST /records", "through the page's proxy", "through the original /add", "through a CloudEvent"}
	if st, _, b := post(t, s.Write.URL()+"/records", `{"type":"bp","text":"`+texts[0]+`"}`); st != http.StatusCreated {
		t.Fatalf("POST /records: %d %s", st, b)
	}
	if st, _, b := post(t, s.Page.URL()+"/api/records", `{"type":"cmt","text":"`+texts[1]+`"}`); st != http.StatusCreated {
		t.Fatalf("POST /api/records: %d %s", st, b)
	}
	if st, _, b := post(t, s.Page.URL()+"/add", `{"d_type":"rvw","data":"`+texts[2]+`"}`); st != http.StatusOK {
		t.Fatalf("POST /add: %d %s", st, b)
	}
	st, reply, b := post(t, s.Write.URL()+"/", `{"type":"bp","text":"`+texts[3]+`"}`,
		"Ce-Specversion", "1.0", "Ce-Id", "door-4", "Ce-Source", "/test", "Ce-Type", record.EventCreate)
	if st != http.StatusOK {
		t.Fatalf("create event: %d %s", st, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	var events []event
	for {
		events = sk.events()
		done := 0
		for _, text := range texts {
			if _, n := byText(events, text); n > 0 {
				done++
			}
		}
		if done == len(texts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the sink has %d of %d records: %+v", done, len(texts), events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show
	events = sk.events()
	var seqs []int64
	for _, text := range texts {
		e, n := byText(events, text)
		if n != 1 {
			t.Errorf("%q arrived %d times, want once", text, n)
		}
		if e.typ != record.EventCreated || e.subject != e.id || e.token == "" || e.source != "/cqrs-write" {
			t.Errorf("event of %q = type %q subject %q token %q source %q; want %s, the record id, a token, /cqrs-write",
				text, e.typ, e.subject, e.token, e.source, record.EventCreated)
		}
		seqs = append(seqs, e.seq())
	}
	if len(events) != len(texts) {
		t.Errorf("the sink took %d events, want %d", len(events), len(texts))
	}
	for i, e := range events[1:] {
		if e.seq() <= events[i].seq() {
			t.Errorf("events out of seq order: %d after %d", e.seq(), events[i].seq())
		}
	}
	// The Broker's create got a reply with the same id and source as the record's
	// event: one event per record for consumers that drop duplicates.
	last, _ := byText(events, texts[3])
	if reply.Get("Ce-Id") != last.id || reply.Get("Ce-Source") != last.source {
		t.Errorf("reply id %q source %q, event id %q source %q; want the same", reply.Get("Ce-Id"), reply.Get("Ce-Source"), last.id, last.source)
	}
	if st, _, b := post(t, s.Write.URL()+"/", `{}`, "Ce-Specversion", "1.0", "Ce-Id", "ping-1", "Ce-Source", "/ping",
		"Ce-Type", "dev.knative.sources.ping"); st != http.StatusAccepted {
		t.Errorf("ping: %d %s, want 202", st, b)
	}
	t.Logf("seqs in arrival order: %v", seqs)
}

// TestRelayKilledBeforeItPublishes: the sink stalls, so the relay has taken the
// entries and is sending when the write function is killed (SIGKILL). Another
// instance takes over once the lease has run out and publishes every record; the
// one the dead relay was sending arrives (perhaps twice, with the same id) and is
// counted as redelivered.
func TestRelayKilledBeforeItPublishes(t *testing.T) {
	sk := newSink(t)
	sk.set(stall)
	pair := testenv.Redis(t)
	bin := testenv.Build(t, testenv.WriteMain)
	env := []string{"REDIS_ADDR=" + pair.Master.Addr(), "K_SINK=" + sk.srv.URL, "OUTBOX_LEASE=2s", "OUTBOX_SEND_TIMEOUT=1s"}
	first := testenv.Start(t, bin, env...)
	testenv.Ready(t, first, 10*time.Second)
	var ids []string
	for i := range 5 {
		st, _, b := post(t, first.URL()+"/records", fmt.Sprintf(`{"type":"bp","text":"killed %d"}`, i))
		if st != http.StatusCreated {
			t.Fatalf("create: %d %s", st, b)
		}
		var r record.Record
		json.Unmarshal(b, &r)
		ids = append(ids, r.ID)
	}
	select {
	case <-sk.stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never sent to the sink")
	}
	first.Kill()
	sk.set(accept)
	second := testenv.Start(t, bin, env...)
	testenv.Ready(t, second, 10*time.Second)
	events := sk.waitFor(t, ids, 20*time.Second)
	for i, e := range events[1:] {
		if e.seq() < events[i].seq() {
			t.Errorf("events out of seq order: %d after %d", e.seq(), events[i].seq())
		}
	}
	if got := metric(t, second, "cqrs_outbox_redelivered_total"); got < 1 {
		t.Errorf("cqrs_outbox_redelivered_total = %v on the instance that took over, want at least 1", got)
	}
	t.Logf("%d events for %d records", len(events), len(ids))
}

// TestSinkDownRefusingAndFull: with the sink down (503) creates go on and nothing is
// lost: the pending gauge rises, creates are refused with 503 outbox_full at
// OUTBOX_MAX_PENDING, and once the sink is back everything arrives and the gauge
// falls to zero. An event the sink refuses is tried OUTBOX_ATTEMPTS times, moved to
// the dead-letter stream and counted, and the records after it still arrive.
func TestSinkDownRefusingAndFull(t *testing.T) {
	sk := newSink(t)
	sk.set(unavailable)
	pair := testenv.Redis(t)
	w := testenv.Start(t, testenv.Build(t, testenv.WriteMain), "REDIS_ADDR="+pair.Master.Addr(), "K_SINK="+sk.srv.URL,
		"OUTBOX_MAX_PENDING=30", "OUTBOX_ATTEMPTS=2", "OUTBOX_POLL=20ms")
	testenv.Ready(t, w, 10*time.Second)
	create := func(text string) (int, string, []byte) {
		st, _, b := post(t, w.URL()+"/records", `{"type":"bp","text":"`+text+`"}`)
		var r record.Record
		json.Unmarshal(b, &r)
		return st, r.ID, b
	}
	var ids []string
	for i := range 30 { // a steady load while the sink is down
		st, id, b := create(fmt.Sprintf("while down %d", i))
		if st != http.StatusCreated {
			t.Fatalf("create %d while the sink is down: %d %s", i, st, b)
		}
		ids = append(ids, id)
		time.Sleep(20 * time.Millisecond)
	}
	st, _, b := create("one too many")
	var e struct{ Code string }
	json.Unmarshal(b, &e)
	if st != http.StatusServiceUnavailable || e.Code != "outbox_full" {
		t.Errorf("create at OUTBOX_MAX_PENDING: %d %s, want 503 outbox_full", st, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, w, "cqrs_outbox_pending") < 30 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := metric(t, w, "cqrs_outbox_pending"); got != 30 {
		t.Errorf("cqrs_outbox_pending = %v while the sink is down, want 30", got)
	}
	if got := metric(t, w, `cqrs_outbox_send_failures_total{reason="unavailable"}`); got < 1 {
		t.Errorf("no send counted as unavailable")
	}

	// The sink is back, but refuses one record.
	refused := ids[10]
	sk.mu.Lock()
	sk.refuse[refused] = true
	sk.mu.Unlock()
	sk.set(accept)
	want := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == refused })
	events := sk.waitFor(t, want, 30*time.Second)
	for _, e := range events {
		if e.id == refused {
			t.Errorf("the refused record %s arrived", refused)
		}
	}
	if len(events) != len(want) {
		t.Errorf("%d events for %d records: duplicates without a fault", len(events), len(want))
	}
	deadline = time.Now().Add(5 * time.Second)
	for (metric(t, w, "cqrs_outbox_pending") != 0 || metric(t, w, "cqrs_outbox_dead_lettered_total") != 1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := metric(t, w, "cqrs_outbox_pending"); got != 0 {
		t.Errorf("cqrs_outbox_pending = %v once everything was sent, want 0", got)
	}
	if got := metric(t, w, "cqrs_outbox_dead_lettered_total"); got != 1 {
		t.Errorf("cqrs_outbox_dead_lettered_total = %v, want 1", got)
	}
	if got := metric(t, w, `cqrs_outbox_send_failures_total{reason="refused"}`); got != 2 {
		t.Errorf("refused sends = %v, want OUTBOX_ATTEMPTS (2)", got)
	}
	dead, err := pair.Master.Do("XLEN", "cqrs:{p0}:outbox:dead")
	if err != nil || dead != "1" {
		t.Errorf("dead-letter stream holds %s (%v), want 1", dead, err)
	}
	if st, _, b := post(t, w.URL()+"/records", `{"type":"bp","text":"after"}`); st != http.StatusCreated {
		t.Errorf("create once the outbox drained: %d %s", st, b)
	}
}

// TestOutboxRefusedIsLoggedOnce: while Redis refuses the relay's reads (the ACL takes
// XRANGE from the user), creates are stored and the log says so once, not at every
// retry; once the command is granted again, the log says so and every record
// arrives.
func TestOutboxRefusedIsLoggedOnce(t *testing.T) {
	sk := newSink(t)
	pair := testenv.Redis(t)
	w := testenv.Start(t, testenv.Build(t, testenv.WriteMain), "REDIS_ADDR="+pair.Master.Addr(), "K_SINK="+sk.srv.URL)
	testenv.Ready(t, w, 10*time.Second)
	if _, err := pair.Master.Do("ACL", "SETUSER", "default", "-xrange"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		st, _, b := post(t, w.URL()+"/records", fmt.Sprintf(`{"type":"bp","text":"refused %d"}`, i))
		if st != http.StatusCreated {
			t.Fatalf("create while the outbox is refused: %d %s", st, b)
		}
		var r record.Record
		json.Unmarshal(b, &r)
		ids = append(ids, r.ID)
	}
	const failed = "cannot read the outbox"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.Output(), failed) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3500 * time.Millisecond) // three more retries, a second apart
	if n := strings.Count(w.Output(), failed); n != 1 {
		t.Errorf("%d log lines say %q over three retries, want 1:\n%s", n, failed, w.Output())
	}
	if _, err := pair.Master.Do("ACL", "SETUSER", "default", "+xrange"); err != nil {
		t.Fatal(err)
	}
	sk.waitFor(t, ids, 20*time.Second)
	if out := w.Output(); !strings.Contains(out, "reading the outbox again") {
		t.Errorf("the log does not say the outbox is read again:\n%s", out)
	}
}
