package read_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

var benchTexts = []string{
	"Hello World from the command side",
	"Redis replicas serve the query side of this sample",
	"Knative scales each function to zero when idle",
	"a comment about blog posts and reviews",
}

// benchPreload stores n records through the store's create script, as the write
// function would, and waits until the replica has them all.
func benchPreload(b *testing.B, pair *testenv.Pair, n int) (lastID string) {
	b.Helper()
	c := store.NewClient(store.Options{Addr: pair.Master.Addr()})
	defer c.Close()
	m := store.New(c)
	// Eight writers race, so the record that gets seq n is known only from the answers.
	ids := make([]string, n+1)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				created, err := m.Create(context.Background(), store.NewRecord{
					Tag: "bench" + strconv.Itoa(i), Type: []string{"bp", "cmt", "rvw"}[i%3],
					Text: benchTexts[i%len(benchTexts)],
				}, 0, 0)
				if err != nil {
					errs <- err
					return
				}
				if seq := created.Seq; seq <= int64(n) {
					ids[seq] = created.ID
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("preload: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seq, err := pair.Replica.Do("GET", "cqrs:{p0}:seq")
		if err == nil && seq == strconv.Itoa(n) {
			return ids[n]
		}
		if time.Now().After(deadline) {
			b.Fatalf("replica at seq %q (err %v), want %d", seq, err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkHandle measures GET requests on a real replica holding 1000 records.
// evalsha_ro/op comes from the replica's INFO commandstats: one per page.
func BenchmarkHandle(b *testing.B) {
	testenv.QuietLogs(b)
	pair := testenv.Redis(b)
	const n = 1000
	id := benchPreload(b, pair, n)
	cfg := read.DefaultConfig()
	cfg.RedisAddr, cfg.RedisMasterAddr = pair.Replica.Addr(), pair.Master.Addr()
	f := read.NewWithConfig(cfg)
	if err := f.Start(context.Background(), nil); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.Cleanup(func() { f.Stop(context.Background()) })
	mux := serve.Mux(f, serve.DefaultConfig())

	for _, tc := range []struct {
		name, target string
		h            http.Handler
		parallel     bool
	}{
		{"newest25", "/records?limit=25", http.HandlerFunc(f.Handle), false},
		{"newest25/Mux", "/records?limit=25", mux, false},
		{"newest25/Mux/parallel32", "/records?limit=25", mux, true},
		{"newest100", "/records?limit=100", http.HandlerFunc(f.Handle), false},
		{"type25", "/records?type=cmt", http.HandlerFunc(f.Handle), false},
		{"search25", "/records?q=redis+replicas", http.HandlerFunc(f.Handle), false},
		{"minSeq25", "/records?minSeq=" + strconv.Itoa(n), http.HandlerFunc(f.Handle), false},
		{"byID", "/records/" + id, http.HandlerFunc(f.Handle), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			testenv.BenchRequests(b, pair.Replica, "evalsha_ro", tc.parallel, func() bool {
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.target, nil))
				if rec.Code != http.StatusOK || rec.Header().Get("X-Served-By") != read.ServedByReplica {
					b.Errorf("GET %s = %d served by %q, want 200 from the replica: %s",
						tc.target, rec.Code, rec.Header().Get("X-Served-By"), rec.Body)
					return false
				}
				return true
			})
		})
	}
}
