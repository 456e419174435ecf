// Package adversary builds the store on which one search once blocked Redis, for the
// test that guards against it (functions/blackbox/faults) and for the bench that
// measures it (cqrs-bench): group records of type bp hold the words k1..k15, group+1
// others hold k16, and a query asks for all sixteen words, which no record holds.
package adversary

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Words are the sixteen words, k1 to k16.
func Words() []string {
	words := make([]string, 16)
	for i := range words {
		words[i] = fmt.Sprintf("k%d", i+1)
	}
	return words
}

// Query is the search for all sixteen words among records of type bp, 100 a page, as
// the query string of GET /records.
func Query() string {
	return url.Values{"type": {"bp"}, "q": {strings.Join(Words(), " ")}, "limit": {"100"}}.Encode()
}

// Grouped says which records hold k1..k15 when they are the first group: the
// indexes of the two groups do not overlap, so the walk can skip the other whole.
func Grouped(group int) func(i int64) bool {
	return func(i int64) bool { return i <= int64(group) }
}

// Interleaved says which records hold k1..k15 when the groups alternate (odd i): no
// index lets the walk skip ahead, so every page is cut by the scan budget.
func Interleaved(i int64) bool { return i%2 == 1 }

// Fill stores 2*group+1 records of type bp through s, from 32 workers: the i-th
// (from 1) holds k1..k15 when has15(i), else k16. It returns the first error.
func Fill(ctx context.Context, s *store.Store, group int, has15 func(i int64) bool) error {
	words := Words()
	many, one := strings.Join(words[:15], " "), words[15]
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(2*group+1) {
					return
				}
				text := one
				if has15(i) {
					text = many
				}
				if _, err := s.Create(ctx, store.NewRecord{ID: fmt.Sprintf("adv%d", i), Type: "bp", Text: text,
					CreatedAt: time.Now()}, 0, 0); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}
