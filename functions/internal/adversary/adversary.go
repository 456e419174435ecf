// Package adversary builds the stores on which a search is as expensive as its
// words can make it, for the tests that guard against them (functions/blackbox/faults)
// and for the bench that measures them (cqrs-bench). Every record is of type bp and
// holds some of the sixteen words k1..k16, and the query asks for all sixteen, which
// no record holds: the page script must walk and cannot return early. The layouts
// differ in how the missing words are arranged, which decides how far each probe
// lets the walk skip.
package adversary

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

// A Layout says which of the sixteen words record i (from 1) of n lacks: the words it
// holds are all the others.
type Layout struct {
	Name    string
	Missing func(i, n int) []int // indexes into Words of the words record i lacks
}

// Layouts is the family, from the one that first blocked Redis to the ones that
// leave the walk the least to skip.
var Layouts = []Layout{
	// Blocks: the first half holds k1..k15, the second k16 alone. The indexes of the
	// two halves do not overlap, so the walk skips the other half whole.
	{"blocks", func(i, n int) []int {
		if i <= n/2 {
			return []int{15}
		}
		return seq(0, 15)
	}},
	// Interleaved: odd records hold k1..k15, even ones k16. No index lets the walk
	// skip more than one record.
	{"interleaved", func(i, _ int) []int {
		if i%2 == 1 {
			return []int{15}
		}
		return seq(0, 15)
	}},
	// Rotating runs: every record lacks one word, and the missing word changes every
	// three records, so each probe that misses skips one short run.
	{"rotating", func(i, _ int) []int { return []int{(i / 3) % 16} }},
	// Scattered: every record lacks one word, chosen by a hash of i, so the index
	// that missed last (which the walk probes first) is rarely the one that misses
	// next, and each record costs probes of about half the indexes.
	{"scattered", func(i, _ int) []int { return []int{int(uint32(i)*2654435761>>16) % 16} }},
}

// seq returns from, from+1, ..., to-1.
func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// Text is the text of record i of n in layout l: the words it holds.
func (l Layout) Text(i, n int) string {
	missing := map[int]bool{}
	for _, m := range l.Missing(i, n) {
		missing[m] = true
	}
	var held []string
	for j, w := range Words() {
		if !missing[j] {
			held = append(held, w)
		}
	}
	return strings.Join(held, " ")
}

// Fill stores records 1..n of layout l with create, from 32 workers, in about that
// order; it returns the first error.
func (l Layout) Fill(ctx context.Context, n int, create func(ctx context.Context, text string) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n || firstErr.Load() != nil {
					return
				}
				if err := create(ctx, l.Text(i, n)); err != nil {
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
