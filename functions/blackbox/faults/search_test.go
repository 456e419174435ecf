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
)

// TestAdversarialSearchUnderLoad builds, through the write function's API alone,
// stores of the adversary family on which a 16-word search that nothing matches
// leaves the walk little to skip: 5,000 records whose missing word rotates in runs,
// and 5,000 whose missing word is scattered. Then:
//   - one search answers 200 with no records, cut: partial and a cursor (the page
//     script ends itself at its time or budget, whichever comes first);
//   - 16 connections send that search for 4 s through two read function instances
//     on the same replica (the bound on searches at once is per instance), while
//     creates and plain reads on other connections keep answering 2xx, none hangs
//     (the client gives up after 5 s), and the master runs no page script.
//
// Latencies and the page scripts' time in Redis are logged, not asserted: they
// depend on what else the machine runs; make bench measures them at 100,000 records,
// and functions/store shows the time bound with an unlimited budget.
func TestAdversarialSearchUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load; skipped with -short")
	}
	for _, name := range []string{"rotating", "scattered"} {
		t.Run(name, func(t *testing.T) {
			i := slices.IndexFunc(adversary.Layouts, func(l adversary.Layout) bool { return l.Name == name })
			searchUnderLoad(t, adversary.Layouts[i], 5000)
		})
	}
}

func searchUnderLoad(t *testing.T, layout adversary.Layout, n int) {
	pair := testenv.Redis(t)
	writeURL := testfunc.Write(t, pair.Master, nil).URL
	readURLs := []string{testfunc.Read(t, pair, nil).URL, testfunc.Read(t, pair, nil).URL}
	c := newClient(64)
	err := layout.Fill(context.Background(), n, func(ctx context.Context, text string) error {
		o, _ := create(c, writeURL, "bp", text)
		if o.err != nil || o.status != http.StatusCreated {
			return fmt.Errorf("create: %d %v %s", o.status, o.err, o.body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitReplica(t, pair, n)
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
	query := "/records?" + adversary.Query()

	// One answer, looked at closely: 200, nothing found, cut short with a cursor.
	var first struct {
		Records    []json.RawMessage `json:"records"`
		NextCursor string            `json:"nextCursor"`
		Partial    bool              `json:"partial"`
	}
	resp, body := testenv.Do(t, http.MethodGet, readURLs[0]+query, nil, "")
	if err := json.Unmarshal(body, &first); resp.StatusCode != 200 || err != nil {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	if len(first.Records) != 0 || !first.Partial || first.NextCursor == "" {
		t.Errorf("search answered %s, want no records, partial: true and a nextCursor", body)
	}

	const (
		attackers = 16
		others    = 4
		duration  = 4 * time.Second
		maxCalls  = 200000
	)
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
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && calls.Add(1) < maxCalls; i++ {
				do(i)
			}
		})
	}
	for a := range attackers {
		url := readURLs[a%len(readURLs)] + query
		loop(func(int) {
			o := do(c, mustRequest(t, http.MethodGet, url, ""))
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
		url := readURLs[w%len(readURLs)] + "/records?limit=25"
		loop(timed(&readLat, "read", func(int) *http.Request {
			return mustRequest(t, http.MethodGet, url, "")
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
	t.Logf("%s: %d searches; %d creates p99 %s; %d reads p99 %s; %d page scripts on the replica, %.0f µs each on average",
		layout.Name, searches.Load(), len(createLat), p99(createLat), len(readLat), p99(readLat), pageCalls, usec)
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

// waitReplica waits until the replica has applied seq.
func waitReplica(t *testing.T, pair *testenv.Pair, seq int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := pair.Replica.Do("GET", "cqrs:{p0}:seq"); err == nil && v == fmt.Sprint(seq) {
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
