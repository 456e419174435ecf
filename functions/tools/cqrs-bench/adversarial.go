package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/adversary"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// advResult is the adversarial search phase: the p50 and p99 of plain creates and
// reads alone, and beside 16 connections sending the 16-word search over each
// layout of the adversary family.
type advResult struct {
	quiet  advStats
	layout []advLayout
}

// advLayout is one layout's run beside the search.
type advLayout struct {
	name     string
	attacked advStats
	searches int
	// search is the Redis time of each search's page script on the replica, plain
	// that of the bystanders' page scripts (from SLOWLOG, which logs every command
	// while the phase runs).
	search, plain scriptTimes
}

// scriptTimes summarizes the durations of one kind of script call.
type scriptTimes struct {
	calls          int
	mean, p99, max time.Duration
}

func newScriptTimes(d []time.Duration) scriptTimes {
	if len(d) == 0 {
		return scriptTimes{}
	}
	s := summarize(d, time.Second)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return scriptTimes{calls: len(d), mean: sum / time.Duration(len(d)), p99: s.p99, max: d[len(d)-1]}
}

// pageScriptTimes splits the page scripts of a SLOWLOG into searches (more index keys
// than a plain page's one) and plain pages.
func pageScriptTimes(log []redis.SlowLog) (search, plain scriptTimes) {
	var s, p []time.Duration
	for _, e := range log {
		if len(e.Args) < 3 || !strings.EqualFold(e.Args[0], "evalsha_ro") {
			continue
		}
		// KEYS: seq, epoch, docs, then the indexes: one for a plain page.
		if n, err := strconv.Atoi(e.Args[2]); err == nil && n > 4 {
			s = append(s, e.Duration)
		} else {
			p = append(p, e.Duration)
		}
	}
	return newScriptTimes(s), newScriptTimes(p)
}

type advStats struct{ creates, reads stats }

const (
	attackers = 16
	bystander = 4 // connections each for plain creates and plain reads
)

// adversarial measures plain creates and reads alone, then, for each layout of the
// adversary family stored at advRecords records, beside 16 connections sending the
// search that no record matches: the Redis time of each page script (bounded by
// store.SearchTime) and what the bystanders wait.
func (b *bench) adversarial(ctx context.Context) error {
	n := b.opts.advRecords
	d := max(b.opts.duration, 2*time.Second)
	if err := b.flush(ctx); err != nil {
		return err
	}
	progress("adversarial search: plain creates and reads (%d connections each) for %s, alone", bystander, d)
	var err error
	if b.res.adv.quiet, _, err = b.advPhase(ctx, d, 0, ""); err != nil {
		return err
	}
	search := b.read.URL() + "/records?" + adversary.Query()
	for _, l := range adversary.Layouts {
		progress("adversarial search, %s: storing %s records", l.Name, count(n))
		if err := b.flush(ctx); err != nil {
			return err
		}
		if err := b.fillAdversarial(ctx, l, n); err != nil {
			return err
		}
		progress("adversarial search, %s: plain creates and reads beside %d connections searching for %s", l.Name, attackers, d)
		r := advLayout{name: l.Name}
		restore, err := slowlogAll(ctx, b.rc)
		if err != nil {
			return err
		}
		r.attacked, r.searches, err = b.advPhase(ctx, d, attackers, search)
		if err != nil {
			restore()
			return err
		}
		log, err := b.rc.SlowLogGet(ctx, -1).Result()
		restore()
		if err != nil {
			return fmt.Errorf("SLOWLOG GET on the replica: %w", err)
		}
		r.search, r.plain = pageScriptTimes(log)
		progress("  %d searches, page script %s mean, %s max in Redis; reads p99 %s", r.search.calls,
			ms(r.search.mean), ms(r.search.max), ms(r.attacked.reads.p99))
		b.res.adv.layout = append(b.res.adv.layout, r)
	}
	return nil
}

// slowlogAll makes rdb's SLOWLOG keep every command (up to 200,000) from now on;
// restore puts its settings back.
func slowlogAll(ctx context.Context, rdb *redis.Client) (restore func(), err error) {
	old, err := rdb.ConfigGet(ctx, "slowlog-*").Result()
	if err != nil {
		return nil, fmt.Errorf("CONFIG GET slowlog-*: %w", err)
	}
	restore = func() {
		for _, k := range []string{"slowlog-log-slower-than", "slowlog-max-len"} {
			rdb.ConfigSet(context.Background(), k, old[k])
		}
		rdb.SlowLogReset(context.Background())
	}
	for k, v := range map[string]string{"slowlog-max-len": "200000", "slowlog-log-slower-than": "0"} {
		if err := rdb.ConfigSet(ctx, k, v).Err(); err != nil {
			restore()
			return nil, fmt.Errorf("CONFIG SET %s: %w", k, err)
		}
	}
	if err := rdb.SlowLogReset(ctx).Err(); err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}

// takeSlowlog returns what rdb's SLOWLOG holds and empties it.
func takeSlowlog(ctx context.Context, rdb *redis.Client) ([]redis.SlowLog, error) {
	log, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("SLOWLOG GET: %w", err)
	}
	return log, rdb.SlowLogReset(ctx).Err()
}

// fillAdversarial stores n records of layout l with the store's create script and
// waits for the replica to have them.
func (b *bench) fillAdversarial(ctx context.Context, l adversary.Layout, n int) error {
	rdb := store.NewClient(store.Options{Addr: b.master.Addr(), PoolSize: 32, ReadTimeout: 10 * time.Second})
	defer rdb.Close()
	st := store.New(rdb)
	var i atomic.Int64
	err := l.Fill(ctx, n, func(ctx context.Context, text string) error {
		_, err := st.Create(ctx, store.NewRecord{Tag: fmt.Sprintf("a%d", i.Add(1)), Type: "bp", Text: text}, 0, 0)
		return err
	})
	if err != nil {
		return err
	}
	return b.waitReplica(ctx)
}

// advPhase runs bystander creates and reads, and n searching connections, for d.
func (b *bench) advPhase(ctx context.Context, d time.Duration, n int, search string) (advStats, int, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := newClient(n + 2*bystander)
	defer c.CloseIdleConnections()
	var searches, failed atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	var creates, reads []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	run := func(do func(i int) error, lat *[]time.Duration) {
		wg.Go(func() {
			var own []time.Duration
			for i := 0; ctx.Err() == nil && i < maxRequests; i++ {
				t := time.Now()
				err := do(i)
				if ctx.Err() != nil && err != nil {
					break
				}
				own = append(own, time.Since(t))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
			if lat != nil {
				mu.Lock()
				*lat = append(*lat, own...)
				mu.Unlock()
			}
		})
	}
	for range n {
		run(func(int) error {
			searches.Add(1)
			return send(ctx, c, http.MethodGet, search, nil, http.StatusOK)
		}, nil)
	}
	for w := range bystander {
		run(func(i int) error {
			body := fmt.Appendf(nil, `{"type":"cmt","text":"load %d %d"}`, w, i)
			return send(ctx, c, http.MethodPost, b.write.URL()+"/records", body, http.StatusCreated)
		}, &creates)
		run(func(int) error {
			return send(ctx, c, http.MethodGet, b.read.URL()+"/records?limit=25", nil, http.StatusOK)
		}, &reads)
	}
	wg.Wait()
	el := time.Since(start)
	if f := failed.Load(); f*100 > int64(len(creates)+len(reads)+int(searches.Load())) {
		return advStats{}, 0, fmt.Errorf("adversarial phase: %d requests failed, first: %v", f, firstErr.Load())
	}
	return advStats{creates: summarize(creates, el), reads: summarize(reads, el)}, int(searches.Load()), nil
}
