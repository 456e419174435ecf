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
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

func newStores(t *testing.T) (master, replica *Store, pair *testenv.Pair) {
	t.Helper()
	pair = testenv.Redis(t)
	mc := NewClient(Options{Addr: pair.Master.Addr()})
	rc := NewClient(Options{Addr: pair.Replica.Addr()})
	t.Cleanup(func() { mc.Close(); rc.Close() })
	return New(mc), New(rc), pair
}

var tagN int

// tag returns a fresh record id tag.
func tag() string { tagN++; return "t" + strconv.Itoa(tagN) }

func mustCreate(t *testing.T, s *Store, typ, text string, claim Claim) Created {
	t.Helper()
	c, err := s.Create(context.Background(), NewRecord{Tag: tag(), Type: typ, Text: text, Claim: claim, ClaimTTL: time.Minute}, 0, 0)
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
		if p.Next == nil {
			return seqs
		}
		q.Cursor = p.Next
	}
	t.Fatalf("Page(%+v): more than %d pages", q, maxPages)
	return nil
}

// waitSeq waits until s has applied seq in partition 0, so replica reads in these
// tests are exact.
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
	before := time.Now().UTC().Truncate(time.Microsecond)
	c := mustCreate(t, m, "bp", "Hello \"World\" <b>&</b> \u2028 ünï", "")
	after := time.Now().UTC()
	if !c.New || c.Seq != 1 || c.ID != "1-"+strings.TrimPrefix(c.ID, "1-") || c.At.Seq != 1 || c.At.Part != 0 || !validEpoch(c.At.Epoch) {
		t.Fatalf("Create = %+v, want a new record with seq 1 in partition 0 with an epoch", c)
	}
	var rec record.Record
	if err := json.Unmarshal(c.Doc, &rec); err != nil {
		t.Fatalf("Create's document %s: %v", c.Doc, err)
	}
	if rec.ID != c.ID || rec.Seq != 1 || rec.Type != "bp" || rec.Text != "Hello \"World\" <b>&</b> \u2028 ünï" {
		t.Errorf("Create's document = %+v, want the record", rec)
	}
	// The create time is the master's clock, which is this machine's.
	if rec.CreatedAt.Before(before) || rec.CreatedAt.After(after) {
		t.Errorf("createdAt %s, want between %s and %s", rec.CreatedAt, before, after)
	}
	waitSeq(t, r, 1)
	g, err := r.GetDoc(ctx, c.ID, Need{})
	if err != nil || g.Status != Served || string(g.Doc) != string(c.Doc) {
		t.Fatalf("GetDoc on replica = %+v, %v; want the document Create returned: %s", g, err, c.Doc)
	}
	if g.At != c.At {
		t.Errorf("GetDoc position = %+v, want %+v", g.At, c.At)
	}
	for _, id := range []string{"missing", "2-" + strings.TrimPrefix(c.ID, "1-"), "1-other", strings.Repeat("x", 100)} {
		if g, err := r.GetDoc(ctx, id, Need{}); g.Doc != nil || err != nil || g.Status != Served {
			t.Errorf("GetDoc(%q) = %+v, %v; want no document, served", id, g, err)
		}
	}
}

func TestCreateClaimReturnsFirstRecord(t *testing.T) {
	m, _, _ := newStores(t)
	first := mustCreate(t, m, "cmt", "first", HTTPClaim("k1"))
	again := mustCreate(t, m, "cmt", "first", HTTPClaim("k1"))
	if again.New {
		t.Fatalf("second Create with the same claim: New = true, want false")
	}
	if again.ID != first.ID || again.Seq != first.Seq || string(again.Doc) != string(first.Doc) || again.At != first.At {
		t.Errorf("replayed = %+v, want %+v", again, first)
	}
	_, err := m.Create(context.Background(), NewRecord{Tag: "x", Type: "cmt", Text: "second text",
		Claim: HTTPClaim("k1"), ClaimTTL: time.Minute}, 0, 0)
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
	q := Query{Limit: 25}
	for pages := 0; ; pages++ {
		p, err := r.Page(ctx, q)
		if err != nil {
			t.Fatalf("Page: %v", err)
		}
		if len(p.At) != 1 || p.At[0].Seq != n {
			t.Errorf("Page.At = %v, want partition 0 at seq %d", p.At, n)
		}
		for _, rec := range p.Records {
			seen = append(seen, rec.Seq)
		}
		if p.Next == nil {
			break
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
		if p.Next[0].Epoch != p.At[0].Epoch {
			t.Errorf("cursor %v does not carry the epoch %q", p.Next, p.At[0].Epoch)
		}
		q.Cursor = p.Next
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
	if c.Seq != 1 {
		t.Errorf("seq after restart = %d, want 1", c.Seq)
	}
	if _, err := pair.Master.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	p, err := m.Page(context.Background(), Query{Limit: 5})
	if err != nil || len(p.Records) != 1 {
		t.Errorf("Page after restart = %+v, %v; want one record", p, err)
	}
	if _, err := pair.Master.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if g, err := m.GetDoc(context.Background(), c.ID, Need{}); err != nil || g.Doc == nil {
		t.Errorf("GetDoc after SCRIPT FLUSH = %+v, %v; want the record", g, err)
	}
}

func TestUnavailable(t *testing.T) {
	m, _, pair := newStores(t)
	pair.Master.Kill()
	_, err := m.Create(context.Background(), NewRecord{Tag: "x", Type: "bp", Text: "x"}, 0, 0)
	if got := fail.Code(err); got != fail.EUNAVAILABLE {
		t.Errorf("Create on a dead master: code %q (%v), want %q", got, err, fail.EUNAVAILABLE)
	}
}

// TestSearchAcrossBatchesAndBudgets walks a search whose matches are spread over
// several of the script's batches, with scan budgets that cut pages short: following
// the cursor must still visit every match once, newest first, whatever the budget.
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
			want = append([]int64{c.Seq}, want...)
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
				if p.Next == nil {
					break
				}
				if q.Cursor != nil && p.Next[0].Seq >= q.Cursor[0].Seq {
					t.Fatalf("budget %d limit %d: cursor %v does not move below %v", budget, limit, p.Next, q.Cursor)
				}
				q.Cursor = p.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("budget %d limit %d: seqs %v, want %v", budget, limit, got, want)
			}
		}
	}
}

// TestIDNamesOneRecordAfterSeqRollback: a failover that loses the last writes rolls
// seq back, and the next record gets a seq that an answered id already holds. That id
// must not name the new record: its tag differs.
func TestIDNamesOneRecordAfterSeqRollback(t *testing.T) {
	m, _, pair := newStores(t)
	ctx := context.Background()
	lost, err := m.Create(ctx, NewRecord{Tag: "lost", Type: "bp", Text: "lost"}, 0, 0)
	if err != nil || lost.ID != "1-lost" {
		t.Fatalf("Create = %+v, %v; want id 1-lost", lost, err)
	}
	// What a promoted replica that had not applied the write holds.
	if _, err := pair.Master.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	kept, err := m.Create(ctx, NewRecord{Tag: "kept", Type: "bp", Text: "kept"}, 0, 0)
	if err != nil || kept.ID != "1-kept" {
		t.Fatalf("Create = %+v, %v; want id 1-kept", kept, err)
	}
	if g, err := m.GetDoc(ctx, lost.ID, Need{}); g.Doc != nil || err != nil {
		t.Errorf("GetDoc(%s) = %s, %v; want no record: seq 1 now holds %s", lost.ID, g.Doc, err, kept.ID)
	}
	if got, err := m.Get(ctx, kept.ID); err != nil || got.Text != "kept" {
		t.Errorf("Get(%s) = %+v, %v", kept.ID, got, err)
	}
}

func TestParseID(t *testing.T) {
	type want struct {
		p   part
		seq int64
	}
	for _, tt := range []struct {
		id    string
		parts int
		want  *want
	}{
		{"1-a", 1, &want{0, 1}}, {"42-x-y", 1, &want{0, 42}}, {"4294967295-t", 1, &want{0, 4294967295}},
		{"0-a", 1, nil}, {"01-a", 1, nil}, {"1-", 1, nil}, {"-a", 1, nil}, {"4294967296-t", 1, nil},
		{"x-a", 1, nil}, {"abcdefghjkmnpqrs", 1, nil}, {"+1-a", 1, nil}, {"0_1-a", 1, nil},
		{"0_1-a", 3, &want{0, 1}}, {"2_7-a_b", 3, &want{2, 7}}, {"3_1-a", 3, nil}, {"1-a", 3, nil},
		{"02_1-a", 3, nil}, {"_1-a", 3, nil}, {"1_0-a", 3, nil},
	} {
		p, seq, ok := parseID(tt.id, tt.parts)
		if tt.want == nil {
			if ok {
				t.Errorf("parseID(%q, %d) = %d, %d; want no id", tt.id, tt.parts, p, seq)
			}
			continue
		}
		if !ok || p != tt.want.p || seq != tt.want.seq {
			t.Errorf("parseID(%q, %d) = %d, %d, %v; want %d, %d", tt.id, tt.parts, p, seq, ok, tt.want.p, tt.want.seq)
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
		if _, err := pair.Master.Do("SET", part(0).key(seqName), strconv.FormatInt(step.from, 10)); err != nil {
			t.Fatal(err)
		}
		for _, text := range step.texts {
			seq := mustCreate(t, m, "bp", text, "").Seq
			all = append([]int64{seq}, all...)
			if strings.HasSuffix(text, "odd") {
				odd = append([]int64{seq}, odd...)
			}
		}
	}
	if want := []int64{1<<32 - 1, 1<<32 - 2, 1<<32 - 3, 1 << 31, 1<<31 - 1, 1<<31 - 2}; !slices.Equal(all, want) {
		t.Fatalf("created seqs %v, want %v", all, want)
	}
	before := dump(t, pair.Master)
	_, err := m.Create(ctx, NewRecord{Tag: "over", Type: "bp", Text: "top", Claim: HTTPClaim("over")}, 0, 0)
	if got := fail.Code(err); got != fail.ELIMIT || !strings.Contains(err.Error(), "maximum") {
		t.Errorf("create after seq 2^32-1: code %q (%v), want %q naming the maximum", got, err, fail.ELIMIT)
	}
	if after := dump(t, pair.Master); after != before {
		t.Errorf("a refused create changed the store:\nbefore %s\nafter  %s", before, after)
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
