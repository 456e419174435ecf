package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// roundTrips counts what the client sends to Redis: every plain command and every
// pipeline is one network round trip.
type roundTrips struct{ n atomic.Int64 }

func (rt *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (rt *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		rt.n.Add(1)
		return next(ctx, cmd)
	}
}

func (rt *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		rt.n.Add(1)
		return next(ctx, cmds)
	}
}

// counted returns a Store on s whose round trips are counted.
func counted(tb testing.TB, s *redisproc.Server) (*store.Store, *roundTrips) {
	tb.Helper()
	c := store.NewClient(store.Options{Addr: s.Addr()})
	tb.Cleanup(func() { c.Close() })
	rt := &roundTrips{}
	c.AddHook(rt)
	st := store.New(c)
	// Open a connection in the main pool and one in go-redis' separate pipeline pool
	// now, so their handshakes (HELLO, CLIENT SETINFO) are not counted against the
	// first request.
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		tb.Fatalf("load scripts: %v", err)
	}
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }); err != nil {
		tb.Fatalf("ping: %v", err)
	}
	rt.n.Store(0)
	return st, rt
}

// commandStats returns calls per command from INFO commandstats; commands that
// scripts run are counted too, so only client-only commands (evalsha, evalsha_ro,
// ping, wait) say how many requests a client made.
func commandStats(tb testing.TB, s *redisproc.Server) map[string]int {
	tb.Helper()
	out, err := s.Do("INFO", "commandstats")
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	m := make(map[string]int)
	for _, l := range strings.Split(out, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(l, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				m[name], _ = strconv.Atoi(v)
			}
		}
	}
	return m
}

// clientCommands are the commands that only a client sends (never our scripts).
var clientCommands = []string{"evalsha", "evalsha_ro", "eval", "eval_ro", "ping", "wait", "script", "hello", "client"}

// scriptMicros returns the total time Redis spent in cmd (INFO commandstats usec).
func scriptMicros(tb testing.TB, s *redisproc.Server, cmd string) float64 {
	tb.Helper()
	v, err := s.Info("commandstats", "cmdstat_"+cmd)
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "usec="); ok {
			f, _ := strconv.ParseFloat(n, 64)
			return f
		}
	}
	return 0
}

func delta(before, after map[string]int) map[string]int {
	d := make(map[string]int)
	for _, c := range clientCommands {
		if n := after[c] - before[c]; n != 0 {
			d[c] = n
		}
	}
	return d
}

var benchText = []string{
	"Hello World from the command side",
	"Redis replicas serve the query side of this sample",
	"Knative scales each function to zero when idle",
	"a comment about blog posts and reviews",
}

func newRecord(i int64) store.NewRecord {
	return store.NewRecord{
		Tag:  "b" + strconv.FormatInt(i, 36) + strconv.FormatInt(time.Now().UnixNano(), 36),
		Type: []string{"bp", "cmt", "rvw"}[i%3],
		Text: benchText[i%int64(len(benchText))],
	}
}

// TestRoundTrips proves the request path's cost in network round trips: one per
// create and one per page, and that the server saw exactly one script call for each.
func TestRoundTrips(t *testing.T) {
	pair := testenv.Redis(t)
	m, mrt := counted(t, pair.Master)
	r, rrt := counted(t, pair.Replica)
	ctx := context.Background()

	// The functions' readiness check at start, which checks the partition count once.
	if err := m.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 20
	before, rtBefore := commandStats(t, pair.Master), mrt.n.Load()
	var last int64
	for i := range int64(n) {
		c, err := m.Create(ctx, newRecord(i), 0, 0)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		last = c.Seq
	}
	if got := mrt.n.Load() - rtBefore; got != n {
		t.Errorf("%d creates took %d round trips, want %d", n, got, n)
	}
	if got, want := delta(before, commandStats(t, pair.Master)), map[string]int{"evalsha": n}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d creates: client commands on the master %v, want %v", n, got, want)
	}

	deadline := time.Now().Add(5 * time.Second)
	var epoch string
	for {
		ps, err := r.Positions(ctx)
		if err == nil && ps[0].Seq >= last {
			epoch = ps[0].Epoch
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica at %v (err %v), want seq %d", ps, err, last)
		}
		time.Sleep(time.Millisecond)
	}

	// A page is one round trip: one read-only script call.
	queries := []struct {
		name string
		q    store.Query
	}{
		{"newest", store.Query{Limit: 25}},
		{"type", store.Query{Type: "bp", Limit: 5}},
		{"words", store.Query{Words: []string{"redis", "replicas"}, Limit: 5}},
		{"next page", store.Query{Limit: 5, Cursor: store.Cursor{{Epoch: epoch, Seq: last - 5}}}},
	}
	for _, tc := range queries {
		before, rtBefore := commandStats(t, pair.Replica), rrt.n.Load()
		p, err := r.PageDocs(ctx, tc.q, store.Need{})
		if err != nil {
			t.Fatalf("%s: Page: %v", tc.name, err)
		}
		if len(p.Docs) == 0 {
			t.Fatalf("%s: Page returned no records", tc.name)
		}
		if got := rrt.n.Load() - rtBefore; got != 1 {
			t.Errorf("%s: one page took %d round trips, want 1", tc.name, got)
		}
		if got, want := delta(before, commandStats(t, pair.Replica)), map[string]int{"evalsha_ro": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: client commands on the replica %v, want %v", tc.name, got, want)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	pair := testenv.Redis(b)
	m, rt := counted(b, pair.Master)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		start, usec := rt.n.Load(), scriptMicros(b, pair.Master, "evalsha")
		b.ReportAllocs()
		var i int64
		for b.Loop() {
			i++
			if _, err := m.Create(ctx, newRecord(i), 0, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rt.n.Load()-start)/float64(i), "roundtrips/op")
		b.ReportMetric((scriptMicros(b, pair.Master, "evalsha")-usec)/float64(i), "redis-µs/op")
	})
	b.Run("parallel32", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16) // 2 cores x 16 = 32 concurrent creates
		var i atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Create(ctx, newRecord(i.Add(1)), 0, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// preload stores n records on the master in parallel and waits for the replica.
func preload(b *testing.B, pair *testenv.Pair, n int) {
	b.Helper()
	m, _ := counted(b, pair.Master)
	ctx := context.Background()
	var next atomic.Int64
	errc := make(chan error, 16)
	for range 16 {
		go func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					errc <- nil
					return
				}
				if _, err := m.Create(ctx, newRecord(i), 0, 0); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for range 16 {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seq, err := pair.Replica.Do("GET", "cqrs:{p0}:seq")
		if err == nil && seq == strconv.Itoa(n) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("replica at seq %q (err %v), want %d", seq, err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkPage(b *testing.B) {
	pair := testenv.Redis(b)
	preload(b, pair, 3000)
	r, rt := counted(b, pair.Replica)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    store.Query
	}{
		{"newest25", store.Query{Limit: 25}},
		{"newest100", store.Query{Limit: 100}},
		{"type25", store.Query{Type: "cmt", Limit: 25}},
		{"words25", store.Query{Words: []string{"redis", "replicas"}, Limit: 25}},
		{"rareword25", store.Query{Words: []string{"nowhere"}, Limit: 25}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			start, usec := rt.n.Load(), scriptMicros(b, pair.Replica, "evalsha_ro")
			b.ReportAllocs()
			var ops int64
			for b.Loop() {
				ops++
				if _, err := r.PageDocs(ctx, tc.q, store.Need{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rt.n.Load()-start)/float64(ops), "roundtrips/op")
			b.ReportMetric((scriptMicros(b, pair.Replica, "evalsha_ro")-usec)/float64(ops), "redis-µs/op")
		})
	}
}
