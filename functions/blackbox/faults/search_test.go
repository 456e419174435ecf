package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/adversary"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// TestAdversarialSearchUnderLoad is the search that once blocked Redis: 10,000
// records hold the words k1..k15, 10,001 others hold k16, and a query asks for all
// sixteen. While 16 connections send it for 5 s, creates and plain reads on other
// connections keep answering 2xx (none hangs: the client gives up after 5 s), and the
// master never runs a page script (a search is never moved to the master). Latencies
// and the page scripts' time in Redis are logged, not asserted: they depend on what
// else the machine runs; make bench measures them against a run without the searches,
// and functions/store bounds each script's Redis calls.
func TestAdversarialSearchUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of load; skipped with -short")
	}
	pair := testenv.Redis(t)
	const group = 10000
	fill(t, pair.Master, group)
	writeURL := testfunc.Write(t, pair.Master, nil).URL
	readURL := testfunc.Read(t, pair, nil).URL
	waitReplica(t, pair, 2*group+1)

	for _, s := range []*redisproc.Server{pair.Master, pair.Replica} {
		for _, cmd := range [][]string{{"CONFIG", "SET", "slowlog-log-slower-than", "20000"}, {"SLOWLOG", "RESET"}} {
			if _, err := s.Do(cmd...); err != nil {
				t.Fatal(err)
			}
		}
	}
	masterPages, _, err := testenv.CommandStats(pair.Master, "evalsha_ro")
	if err != nil {
		t.Fatal(err)
	}
	search := readURL + "/records?" + adversary.Query()

	// One answer, looked at closely: 200, nothing found, and either the end or a page
	// that says it was cut by the budget and carries a cursor.
	var first struct {
		Records    []json.RawMessage `json:"records"`
		NextCursor string            `json:"nextCursor"`
		Partial    bool              `json:"partial"`
	}
	resp, body := testenv.Do(t, http.MethodGet, search, nil, "")
	if err := json.Unmarshal(body, &first); resp.StatusCode != 200 || err != nil {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	cut := first.Partial && first.NextCursor != ""
	end := !first.Partial && first.NextCursor == ""
	if len(first.Records) != 0 || !cut && !end {
		t.Errorf("search answered %s, want no records and either the end or partial: true with a nextCursor", body)
	}

	const (
		attackers = 16
		others    = 4
		duration  = 5 * time.Second
		maxCalls  = 200000
	)
	c := newClient(attackers + 2*others)
	var searches, calls atomic.Int64
	var mu sync.Mutex
	var createLat, readLat []time.Duration
	var failures []string
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	loop := func(do func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && calls.Add(1) < maxCalls; i++ {
				do(i)
			}
		}()
	}
	for range attackers {
		loop(func(int) {
			o := do(c, mustRequest(t, http.MethodGet, search, ""))
			if o.err == nil && o.status != 200 {
				fail(fmt.Sprintf("search: %d %s", o.status, o.body))
			}
			searches.Add(1)
		})
	}
	timed := func(lat *[]time.Duration, what string, req func(i int) *http.Request, want int) func(int) {
		return func(i int) {
			start := time.Now()
			o := do(c, req(i))
			d := time.Since(start)
			if ctx.Err() != nil && o.err != nil {
				return // cut off by the end of the run
			}
			if o.err != nil || o.status != want {
				fail(fmt.Sprintf("%s: %d %v %s", what, o.status, o.err, o.body))
			}
			mu.Lock()
			*lat = append(*lat, d)
			mu.Unlock()
		}
	}
	for w := range others {
		loop(timed(&createLat, "create", func(i int) *http.Request {
			return mustRequest(t, http.MethodPost, writeURL+"/records", fmt.Sprintf(`{"type":"cmt","text":"load %d %d"}`, w, i))
		}, http.StatusCreated))
		loop(timed(&readLat, "read", func(int) *http.Request {
			return mustRequest(t, http.MethodGet, readURL+"/records?limit=25", "")
		}, http.StatusOK))
	}
	wg.Wait()

	p99 := func(l []time.Duration) time.Duration {
		if len(l) == 0 {
			return 0
		}
		slices.Sort(l)
		return l[len(l)*99/100]
	}
	pageCalls, usec, err := testenv.CommandStats(pair.Replica, "evalsha_ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d searches; %d creates p99 %s; %d reads p99 %s; %d page scripts on the replica, %.0f us each on average",
		searches.Load(), len(createLat), p99(createLat), len(readLat), p99(readLat), pageCalls, usec)
	for _, f := range failures {
		t.Error(f)
	}
	if len(createLat) == 0 || len(readLat) == 0 {
		t.Fatal("no creates or reads were answered during the searches")
	}
	for name, s := range map[string]*redisproc.Server{"master": pair.Master, "replica": pair.Replica} {
		n, _ := s.Do("SLOWLOG", "LEN")
		t.Logf("%s SLOWLOG: %s commands over 20 ms (a busy machine pauses Redis itself too)", name, n)
	}
	if after, _, _ := testenv.CommandStats(pair.Master, "evalsha_ro"); after != masterPages {
		t.Errorf("the master ran %d page scripts, want none", after-masterPages)
	}
}

// fill stores the adversarial records, the first group holding k1..k15 (see
// adversary.Fill).
func fill(t *testing.T, m *redisproc.Server, group int) {
	t.Helper()
	rdb := store.NewClient(store.Options{Addr: m.Addr(), PoolSize: 32})
	defer rdb.Close()
	if err := adversary.Fill(context.Background(), store.New(rdb), group, adversary.Grouped(group)); err != nil {
		t.Fatal(err)
	}
}

// waitReplica waits until the replica has applied seq.
func waitReplica(t *testing.T, pair *testenv.Pair, seq int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := pair.Replica.Do("GET", "cqrs:seq"); err == nil && v == fmt.Sprint(seq) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica did not reach seq %d", seq)
}

func mustRequest(t *testing.T, method, u, body string) *http.Request {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}
