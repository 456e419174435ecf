package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// preload fills the store up to n records with the store's own create script from
// many goroutines, so the keys and indexes are exactly what cqrs-write writes, then
// waits until the replica has applied them all.
func (b *bench) preload(ctx context.Context, n int) error {
	rdb := store.NewClient(store.Options{Addr: b.master.Addr(), PoolSize: 64, ReadTimeout: 10 * time.Second})
	defer rdb.Close()
	st := store.New(rdb)
	ps, err := st.Positions(ctx)
	if err != nil {
		return err
	}
	have := ps[0].Seq
	todo := int64(n) - have
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 48 {
		wg.Go(func() {
			c := newCorpus(uint64(w)+100, uint64(have))
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > todo {
					return
				}
				if i%100000 == 0 {
					progress("  %d of %d", i, todo)
				}
				_, err := st.Create(ctx, store.NewRecord{
					Tag: fmt.Sprintf("p%x", c.r.Uint32()), Type: recordTypes[i%3], Text: c.text(),
				}, 0, 0)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("preload: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.waitReplica(ctx); err != nil {
		return err
	}
	if todo > 0 {
		progress("  %d records in %s (%.0f creates/s in-process)", todo, time.Since(start).Round(time.Millisecond), float64(todo)/time.Since(start).Seconds())
	}
	return nil
}
