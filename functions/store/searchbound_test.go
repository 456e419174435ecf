package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestSearchIsCutByItsTime runs the 16-word search that nothing matches over stores
// whose indexes leave the walk little to skip (layouts of the adversary family, see
// functions/internal/adversary), with a unit budget too large to ever run out: only
// the script's own clock can end a page. Every page must come back empty and cut,
// with a cursor that moves down, and the walk must reach the end. How long the
// scripts ran is logged, not asserted; make bench measures it.
func TestSearchIsCutByItsTime(t *testing.T) {
	const n = 20001
	words := make([]string, 16)
	for i := range words {
		words[i] = fmt.Sprintf("k%d", i+1)
	}
	for _, tc := range []struct {
		name    string
		missing func(seq int) int // the word (0..15) record seq lacks
	}{
		// Every other record lacks k16 (the interleaved pair of the old test).
		{"interleaved", func(seq int) int { return 15 * (seq % 2) }},
		// Record seq lacks one word, the missing word rotating in runs of 3.
		{"rotating runs", func(seq int) int { return (seq / 3) % 16 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, r, pair := newStores(t)
			ctx := context.Background()
			indexStore(t, m, n, words, tc.missing)
			waitSeq(t, r, n)
			r.budget = 1 << 30
			q := Query{Type: "bp", Words: words, Limit: 100}
			pages, cut := 0, 0
			for ; pages < 5000; pages++ {
				p, err := r.PageDocs(ctx, q, Need{})
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Docs) != 0 {
					t.Fatalf("page %d holds %d records; nothing matches all 16 words", pages, len(p.Docs))
				}
				if p.Cut {
					cut++
				}
				if p.Next == nil {
					break
				}
				if !p.Cut {
					t.Fatalf("page %d: a cursor on an empty page that was not cut", pages)
				}
				if q.Cursor != nil && p.Next[0].Seq >= q.Cursor[0].Seq {
					t.Fatalf("page %d: cursor %v does not move below %v", pages, p.Next, q.Cursor)
				}
				q.Cursor = p.Next
			}
			if pages >= 5000 || cut == 0 {
				t.Fatalf("%d pages, %d cut: want a walk that ends, cut by the script's time", pages+1, cut)
			}
			calls, usec, err := testenv.CommandStats(pair.Replica, "evalsha_ro")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pages, %d cut by time, %.0f µs per page script (its bound: %s)", calls, cut, usec, searchTime)
		})
	}
}

// indexStore writes the indexes of n records of type bp straight into partition 0:
// record seq holds every word but words[missing(seq)]. Only the indexes are written;
// a search that matches nothing never reads a document.
func indexStore(t *testing.T, s *Store, n int, words []string, missing func(seq int) int) {
	t.Helper()
	ctx := context.Background()
	p := part(0)
	lists := map[string][]byte{}
	for seq := 1; seq <= n; seq++ {
		e := docField(int64(seq))
		lists[p.typeKey("bp")] = append(lists[p.typeKey("bp")], e...)
		lists[p.key(allName)] = append(lists[p.key(allName)], e...)
		for i, w := range words {
			if i != missing(seq) {
				lists[p.wordKey(w)] = append(lists[p.wordKey(w)], e...)
			}
		}
	}
	pipe := s.rdb.Pipeline()
	for k, v := range lists {
		pipe.Set(ctx, k, v, 0)
	}
	pipe.Set(ctx, p.key(seqName), n, 0)
	pipe.Set(ctx, p.key(epochName), "testepoch", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}
