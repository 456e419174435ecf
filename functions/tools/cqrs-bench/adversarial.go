package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/adversary"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// advResult is the adversarial search phase: the p99 of plain creates and reads
// without and with 16 connections sending the search.
type advResult struct {
	quiet, attacked advStats
	searches        int
	pageUsec        float64 // Redis time per page script on the replica under attack
	// The same records interleaved (odd seqs hold k1..k15, even seqs k16): no index
	// lets the walk skip ahead, so every page is cut by the scan budget.
	interleaved         advStats
	interleavedSearches int
	interleavedUsec     float64
}

type advStats struct{ creates, reads stats }

const (
	attackers = 16
	bystander = 4 // connections each for plain creates and plain reads
)

// adversarial stores the search of TestAdversarialSearchUnderLoad (group records
// with the words k1..k15, group+1 others with k16, a query for all sixteen), then
// measures plain creates and reads for one phase alone and one phase beside 16
// connections sending that search.
func (b *bench) adversarial(ctx context.Context) error {
	group := b.opts.advGroup
	progress("adversarial search: storing %d + %d records", group, group+1)
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.fillAdversarial(ctx, group, adversary.Grouped(group)); err != nil {
		return err
	}
	search := b.read.URL() + "/records?" + adversary.Query()
	d := max(b.opts.duration, 2*time.Second)
	progress("adversarial search: plain creates and reads (%d connections each) for %s, alone", bystander, d)
	var err error
	if b.res.adv.quiet, _, err = b.advPhase(ctx, d, 0, search); err != nil {
		return err
	}
	progress("adversarial search: the same beside %d connections searching for %s", attackers, d)
	before := commandStats(ctx, b.rc)
	if b.res.adv.attacked, b.res.adv.searches, err = b.advPhase(ctx, d, attackers, search); err != nil {
		return err
	}
	b.res.adv.pageUsec = commandStats(ctx, b.rc)["evalsha_ro"].perCallSince(before["evalsha_ro"])

	progress("adversarial search, interleaved: storing the same records with the groups interleaved")
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.fillAdversarial(ctx, group, adversary.Interleaved); err != nil {
		return err
	}
	progress("adversarial search, interleaved: plain creates and reads beside %d connections searching for %s", attackers, d)
	before = commandStats(ctx, b.rc)
	if b.res.adv.interleaved, b.res.adv.interleavedSearches, err = b.advPhase(ctx, d, attackers, search); err != nil {
		return err
	}
	b.res.adv.interleavedUsec = commandStats(ctx, b.rc)["evalsha_ro"].perCallSince(before["evalsha_ro"])
	return nil
}

// fillAdversarial stores the adversarial records (see adversary.Fill) and waits for
// the replica to have them.
func (b *bench) fillAdversarial(ctx context.Context, group int, has15 func(i int64) bool) error {
	rdb := store.NewClient(store.Options{Addr: b.master.Addr(), PoolSize: 32, ReadTimeout: 10 * time.Second})
	defer rdb.Close()
	if err := adversary.Fill(ctx, store.New(rdb), group, has15); err != nil {
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
