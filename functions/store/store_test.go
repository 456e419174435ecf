package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

func newStores(t *testing.T) (master, replica *Store, pair *testenv.Pair) {
	t.Helper()
	pair = testenv.Redis(t)
	mc := NewClient(Options{Addr: pair.Master.Addr()})
	rc := NewClient(Options{Addr: pair.Replica.Addr()})
	t.Cleanup(func() { mc.Close(); rc.Close() })
	return New(mc), New(rc), pair
}

func mustCreate(t *testing.T, s *Store, typ, text, claim string) Created {
	t.Helper()
	c, err := s.Create(context.Background(), NewRecord{
		ID: "id" + strconv.FormatInt(time.Now().UnixNano(), 36), Type: typ, Text: text,
		CreatedAt: time.Now(), Claim: claim, ClaimTTL: time.Minute,
	}, 0, 0)
	if err != nil {
		t.Fatalf("Create(%q, %q): %v", typ, text, err)
	}
	return c
}

// pageSeqs walks the pages of q from its cursor on, at most maxPages of them, and
// returns the seqs of their records in order.
func pageSeqs(t *testing.T, s *Store, q Query, maxPages int) []int64 {
	t.Helper()
	var seqs []int64
	for range maxPages {
		p, err := s.Page(context.Background(), q)
		if err != nil {
			t.Fatalf("Page(%+v): %v", q, err)
		}
		for _, rec := range p.Records {
			seqs = append(seqs, rec.Seq)
		}
		if p.Next == 0 {
			return seqs
		}
		q.Before = p.Next
	}
	t.Fatalf("Page(%+v): more than %d pages", q, maxPages)
	return nil
}

// waitSeq waits until s has applied seq, so replica reads in these tests are exact.
func waitSeq(t *testing.T, s *Store, seq int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.Seq(context.Background())
		if err == nil && got >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica at seq %d (err %v), want %d", got, err, seq)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCreateAndGet(t *testing.T) {
	m, r, _ := newStores(t)
	ctx := context.Background()
	c := mustCreate(t, m, "bp", "Hello \"World\" <b>&</b> \u2028 ünï", "")
	if !c.New || c.Record.Seq != 1 || c.Record.Type != "bp" || c.Record.Text != "Hello \"World\" <b>&</b> \u2028 ünï" {
		t.Fatalf("Create = %+v, want a new bp record with seq 1", c)
	}
	waitSeq(t, r, 1)
	got, seq, err := r.Get(ctx, c.Record.ID)
	if err != nil {
		t.Fatalf("Get on replica: %v", err)
	}
	if seq != 1 {
		t.Errorf("Get seq = %d, want 1", seq)
	}
	if got.ID != c.Record.ID || got.Text != c.Record.Text || !got.CreatedAt.Equal(c.Record.CreatedAt) {
		t.Errorf("Get = %+v, want %+v", got, c.Record)
	}
	doc, _, err := r.GetDoc(ctx, c.Record.ID)
	want, _ := json.Marshal(c.Record)
	if err != nil || string(doc) != string(want) {
		t.Errorf("GetDoc = %s, %v; want the record as encoding/json writes it: %s", doc, err, want)
	}
	if doc, _, err := r.GetDoc(ctx, "missing"); doc != nil || err != nil {
		t.Errorf("GetDoc(missing) = %s, %v; want no document and no error", doc, err)
	}
}

func TestCreateClaimReturnsFirstRecord(t *testing.T) {
	m, _, _ := newStores(t)
	first := mustCreate(t, m, "cmt", "first", HTTPClaim("k1"))
	again := mustCreate(t, m, "cmt", "first", HTTPClaim("k1"))
	if again.New {
		t.Fatalf("second Create with the same claim: New = true, want false")
	}
	if again.Record != first.Record {
		t.Errorf("replayed record = %+v, want %+v", again.Record, first.Record)
	}
	_, err := m.Create(context.Background(), NewRecord{ID: "x", Type: "cmt", Text: "second text",
		CreatedAt: time.Now(), Claim: HTTPClaim("k1"), ClaimTTL: time.Minute}, 0, 0)
	if got := fail.Code(err); got != fail.ECONFLICT {
		t.Errorf("same claim, other text: code %q (%v), want %q", got, err, fail.ECONFLICT)
	}
	other := mustCreate(t, m, "cmt", "other", EventClaim("k1", ""))
	if !other.New {
		t.Errorf("an event claim must not collide with an HTTP claim of the same text")
	}
	if n, _ := m.Seq(context.Background()); n != 2 {
		t.Errorf("seq = %d, want 2 (a replay takes no seq)", n)
	}
}

func TestEventClaimKeepsSourceAndIDApart(t *testing.T) {
	if EventClaim("a:b", "c") == EventClaim("a", "b:c") {
		t.Error(`EventClaim("a:b","c") == EventClaim("a","b:c")`)
	}
}

func TestPagePaginationAndSearch(t *testing.T) {
	m, r, _ := newStores(t)
	ctx := context.Background()
	const n = 60
	for i := 1; i <= n; i++ {
		typ := "bp"
		if i%3 == 0 {
			typ = "cmt"
		}
		text := fmt.Sprintf("note %d", i)
		if i%5 == 0 {
			text += " Fizz"
		}
		if i%7 == 0 {
			text += " buzz"
		}
		mustCreate(t, m, typ, text, "")
	}
	waitSeq(t, r, n)

	// Walking all pages visits every seq once, newest first.
	var seen []int64
	var before int64
	for pages := 0; ; pages++ {
		p, err := r.Page(ctx, Query{Limit: 25, Before: before})
		if err != nil {
			t.Fatalf("Page: %v", err)
		}
		if p.Seq != n {
			t.Errorf("Page.Seq = %d, want %d", p.Seq, n)
		}
		for _, rec := range p.Records {
			seen = append(seen, rec.Seq)
		}
		if p.Next == 0 {
			break
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
		before = p.Next
	}
	if len(seen) != n {
		t.Fatalf("pages held %d records, want %d", len(seen), n)
	}
	for i, s := range seen {
		if want := int64(n - i); s != want {
			t.Fatalf("record %d has seq %d, want %d (newest first, no gap or overlap)", i, s, want)
		}
	}

	tests := []struct {
		name  string
		q     Query
		match func(i int) bool
	}{
		{"type", Query{Type: "cmt", Limit: 100}, func(i int) bool { return i%3 == 0 }},
		{"one word", Query{Words: []string{"fizz"}, Limit: 100}, func(i int) bool { return i%5 == 0 }},
		{"all words", Query{Words: []string{"fizz", "buzz"}, Limit: 100}, func(i int) bool { return i%35 == 0 }},
		{"word and type", Query{Type: "bp", Words: []string{"buzz"}, Limit: 100}, func(i int) bool { return i%7 == 0 && i%3 != 0 }},
		{"no such word", Query{Words: []string{"nothing"}, Limit: 100}, func(int) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int64
			for i := n; i >= 1; i-- {
				if tt.match(i) {
					want = append(want, int64(i))
				}
			}
			// Small pages, so the cursor is exercised on filtered queries too.
			q := tt.q
			q.Limit = 3
			got := pageSeqs(t, r, q, 100)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Page(%+v) seqs = %v, want %v", tt.q, got, want)
			}
		})
	}
}

func TestNoScriptAfterRestart(t *testing.T) {
	m, _, pair := newStores(t)
	mustCreate(t, m, "bp", "before", "")
	if err := pair.Master.Restart(); err != nil {
		t.Fatalf("restart master: %v", err)
	}
	// The restarted master has an empty script cache and an empty data set.
	c := mustCreate(t, m, "bp", "after", "")
	if c.Record.Seq != 1 {
		t.Errorf("seq after restart = %d, want 1", c.Record.Seq)
	}
	p, err := m.Page(context.Background(), Query{Limit: 5})
	if err != nil || len(p.Records) != 1 {
		t.Errorf("Page after restart = %+v, %v; want one record", p, err)
	}
}

func TestUnavailable(t *testing.T) {
	m, _, pair := newStores(t)
	pair.Master.Kill()
	start := time.Now()
	_, err := m.Create(context.Background(), NewRecord{ID: "x", Type: "bp", Text: "x", CreatedAt: time.Now()}, 0, 0)
	if got := fail.Code(err); got != fail.EUNAVAILABLE {
		t.Errorf("Create on a dead master: code %q (%v), want %q", got, err, fail.EUNAVAILABLE)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Create on a dead master took %s, want under 3s", d)
	}
}

// TestSearchAcrossBatchesAndBudgets walks a search whose matches are spread over
// several of the script's batches, with scan budgets that cut pages short: following
// nextCursor must still visit every match once, newest first, whatever the budget.
func TestSearchAcrossBatchesAndBudgets(t *testing.T) {
	m, r, _ := newStores(t)
	ctx := context.Background()
	const n = 450
	var want []int64
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("entry %d", i)
		// The smaller index ("lucky", 150 entries) outgrows one batch of the script.
		if i%3 == 0 {
			text += " lucky"
		}
		if i%2 == 0 {
			text += " seven"
		}
		c := mustCreate(t, m, "bp", text, "")
		if i%6 == 0 {
			want = append([]int64{c.Record.Seq}, want...)
		}
	}
	waitSeq(t, r, n)
	for _, budget := range []int{1, 3, 10, 77, 10000} {
		for _, limit := range []int{1, 2, 5, 25} {
			r.budget = budget
			q := Query{Words: []string{"lucky", "seven"}, Limit: limit}
			if limit == 2 {
				// A third index, probed in an order the script reorders as it goes.
				q = Query{Type: "bp", Words: []string{"seven", "entry", "lucky"}, Limit: limit}
			}
			var got []int64
			for pages := 0; ; pages++ {
				if pages > 2*n {
					t.Fatalf("budget %d limit %d: no end after %d pages", budget, limit, pages)
				}
				p, err := r.Page(ctx, q)
				if err != nil {
					t.Fatalf("budget %d limit %d: %v", budget, limit, err)
				}
				if len(p.Records) > limit {
					t.Fatalf("budget %d limit %d: page of %d", budget, limit, len(p.Records))
				}
				for _, rec := range p.Records {
					got = append(got, rec.Seq)
				}
				if p.Next == 0 {
					break
				}
				if q.Before != 0 && p.Next >= q.Before {
					t.Fatalf("budget %d limit %d: cursor %d does not move below %d", budget, limit, p.Next, q.Before)
				}
				q.Before = p.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("budget %d limit %d: seqs %v, want %v", budget, limit, got, want)
			}
		}
	}
}

// TestSearchCostIsBounded runs the search that once held a replica for 150 ms: 16
// words, 10,000 records holding the first 15 and 10,001 others holding the 16th, so
// nothing matches all of them; and the same records interleaved (odd seqs hold the 15
// words, even seqs the 16th), where no index can tell the walk to skip ahead. Every
// page script must stay within its budget of Redis calls (counted by Redis), never
// return a record, and hand out cursors that reach the end; the interleaved walk must
// be cut by the budget. The time each took is logged; make bench measures it.
func TestSearchCostIsBounded(t *testing.T) {
	const group = 10000
	words := make([]string, 16)
	for i := range words {
		words[i] = fmt.Sprintf("k%d", i+1)
	}
	for _, tc := range []struct {
		name    string
		has15   func(seq int) bool // the record holds words[:15], else words[15]
		mustCut bool
	}{
		{"blocks", func(seq int) bool { return seq <= group }, false},
		{"interleaved", func(seq int) bool { return seq%2 == 1 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, r, pair := newStores(t)
			ctx := context.Background()
			adversarialStore(t, m, 2*group+1, words, tc.has15)
			waitSeq(t, r, 2*group+1)
			q := Query{Type: "bp", Words: words, Limit: 100}
			pages, cut := 0, 0
			for ; pages < 200; pages++ {
				p, err := r.PageDocs(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Docs) != 0 {
					t.Fatalf("page %d holds %d records; nothing matches all 16 words", pages, len(p.Docs))
				}
				if p.Cut {
					cut++
				}
				if p.Next == 0 {
					break
				}
				if !p.Cut {
					t.Fatalf("page %d: a cursor on an empty page that was not cut", pages)
				}
				q.Before = p.Next
			}
			if pages >= 200 || (tc.mustCut && cut == 0) {
				t.Fatalf("%d pages, %d cut: want a walk that ends (cut by the budget: %v)", pages+1, cut, tc.mustCut)
			}
			calls, usec, err := testenv.CommandStats(pair.Replica, "evalsha_ro")
			if err != nil {
				t.Fatal(err)
			}
			// What the scripts asked of Redis, counted by Redis: the bound that makes the
			// time short on any machine.
			inner := 0
			for _, cmd := range []string{"get", "strlen", "getrange", "mget"} {
				n, _, err := testenv.CommandStats(pair.Replica, cmd)
				if err != nil {
					t.Fatal(err)
				}
				inner += n
			}
			t.Logf("%d page scripts, %.0f us and %d Redis calls each on average, %d cut by the budget", calls, usec, inner/calls, cut)
			if limit := scanBudget + len(q.Words) + 2 + q.Limit; inner/calls > limit {
				t.Errorf("a page script made %d Redis calls on average, want at most the budget and the page's reads (%d)", inner/calls, limit)
			}
		})
	}
}

// adversarialStore writes the indexes of n records of type bp straight into Redis:
// those for which has15(seq) hold words[:15], the others words[15]. Only the indexes
// are written; a search that matches nothing never reads a record.
func adversarialStore(t *testing.T, s *Store, n int, words []string, has15 func(seq int) bool) {
	t.Helper()
	ctx := context.Background()
	lists := map[string][]byte{}
	for seq := 1; seq <= n; seq++ {
		e := indexEntry(int64(seq))
		lists[typeKey("bp")] = append(lists[typeKey("bp")], e...)
		lists[allKey] = append(lists[allKey], e...)
		ws := words[len(words)-1:]
		if has15(seq) {
			ws = words[:len(words)-1]
		}
		for _, w := range ws {
			lists[wordKey(w)] = append(lists[wordKey(w)], e...)
		}
	}
	pipe := s.rdb.Pipeline()
	for k, v := range lists {
		pipe.Set(ctx, k, v, 0)
	}
	pipe.Set(ctx, seqKey, n, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIDNamesOneRecordAfterSeqRollback: a failover that loses the last writes rolls
// seq back, and the next record gets a seq that an answered id already holds. That id
// must not name the new record: its tag differs.
func TestIDNamesOneRecordAfterSeqRollback(t *testing.T) {
	m, _, pair := newStores(t)
	ctx := context.Background()
	lost, err := m.Create(ctx, NewRecord{ID: "lost", Type: "bp", Text: "lost", CreatedAt: time.Now()}, 0, 0)
	if err != nil || lost.Record.ID != "1-lost" {
		t.Fatalf("Create = %+v, %v; want id 1-lost", lost, err)
	}
	// What a promoted replica that had not applied the write holds.
	if _, err := pair.Master.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	kept, err := m.Create(ctx, NewRecord{ID: "kept", Type: "bp", Text: "kept", CreatedAt: time.Now()}, 0, 0)
	if err != nil || kept.Record.ID != "1-kept" {
		t.Fatalf("Create = %+v, %v; want id 1-kept", kept, err)
	}
	if doc, _, err := m.GetDoc(ctx, lost.Record.ID); doc != nil || err != nil {
		t.Errorf("GetDoc(%s) = %s, %v; want no record: seq 1 now holds %s", lost.Record.ID, doc, err, kept.Record.ID)
	}
	if got, _, err := m.Get(ctx, kept.Record.ID); err != nil || got.Text != "kept" {
		t.Errorf("Get(%s) = %+v, %v", kept.Record.ID, got, err)
	}
}

func TestSeqOfID(t *testing.T) {
	for id, want := range map[string]int64{"1-a": 1, "42-x-y": 42, "4294967295-t": 4294967295,
		"0-a": 0, "01-a": 0, "1-": 0, "-a": 0, "4294967296-t": 0, "x-a": 0, "abcdefghjkmnpqrs": 0, "+1-a": 0} {
		got, ok := seqOfID(id)
		if got != want || ok != (want > 0) {
			t.Errorf("seqOfID(%q) = %d, %v; want %d", id, got, ok, want)
		}
	}
}

// TestSeqsAcrossTheEntryRange: an index entry holds a seq in 4 bytes, so seqs on both
// sides of 2^31 and up to 2^32-1 page, search and resume from their cursors exactly,
// and the create after the last seq is refused with the store unchanged.
func TestSeqsAcrossTheEntryRange(t *testing.T) {
	m, r, pair := newStores(t)
	ctx := context.Background()
	var all, odd []int64 // newest first
	for _, step := range []struct {
		from  int64
		texts []string
	}{
		{1<<31 - 3, []string{"top odd", "top", "top odd"}},
		{1<<32 - 4, []string{"top", "top odd", "top"}},
	} {
		if _, err := pair.Master.Do("SET", seqKey, strconv.FormatInt(step.from, 10)); err != nil {
			t.Fatal(err)
		}
		for _, text := range step.texts {
			seq := mustCreate(t, m, "bp", text, "").Record.Seq
			all = append([]int64{seq}, all...)
			if strings.HasSuffix(text, "odd") {
				odd = append([]int64{seq}, odd...)
			}
		}
	}
	if want := []int64{1<<32 - 1, 1<<32 - 2, 1<<32 - 3, 1 << 31, 1<<31 - 1, 1<<31 - 2}; !slices.Equal(all, want) {
		t.Fatalf("created seqs %v, want %v", all, want)
	}
	_, err := m.Create(ctx, NewRecord{ID: "over", Type: "bp", Text: "top", CreatedAt: time.Now()}, 0, 0)
	if err == nil || !strings.Contains(err.Error(), "maximum number of records") {
		t.Errorf("create after seq 2^32-1: %v, want the store's maximum refused", err)
	}
	waitSeq(t, r, 1<<32-1)

	for _, tt := range []struct {
		name string
		q    Query
		want []int64
	}{
		{"pages of 2 of one index", Query{Limit: 2}, all},
		{"pages of 1 of a search of two words", Query{Words: []string{"top", "odd"}, Limit: 1}, odd},
		{"a search by type and word", Query{Type: "bp", Words: []string{"odd"}, Limit: 2}, odd},
	} {
		if got := pageSeqs(t, r, tt.q, 10); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got seqs %v, want %v", tt.name, got, tt.want)
		}
	}
}
