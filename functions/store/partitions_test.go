package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// TestPartitions runs a store of three partitions on one master, as cluster mode
// lays it out: creates spread over the partitions, a retried claim finds its
// partition, ids name their partition, pages merge the partitions newest first and
// their cursors visit every record once, and a function configured for another
// number of partitions cannot write.
func TestPartitions(t *testing.T) {
	m, r, pair := newStores(t)
	m.withParts(3)
	r.withParts(3)
	ctx := context.Background()
	const n = 90
	var created []Created // in create order
	perPart := map[int]int{}
	for i := range n {
		text := fmt.Sprintf("record %d", i)
		if i%4 == 0 {
			text += " quad"
		}
		c := mustCreate(t, m, []string{"bp", "cmt"}[i%2], text, HTTPClaim(fmt.Sprintf("k%d", i)))
		if !strings.HasPrefix(c.ID, fmt.Sprintf("%d_%d-", c.At.Part, c.Seq)) {
			t.Fatalf("id %q does not name partition %d and seq %d", c.ID, c.At.Part, c.Seq)
		}
		created = append(created, c)
		perPart[c.At.Part]++
	}
	if len(perPart) != 3 {
		t.Errorf("records per partition %v, want all three used", perPart)
	}
	// A retry of the same claim goes to the same partition and gets the record.
	again := mustCreate(t, m, "cmt", "record 7", HTTPClaim("k7"))
	if again.New || again.ID != created[7].ID {
		t.Errorf("retried claim = %+v, want the record %s", again, created[7].ID)
	}
	// Wait for the replica to have every partition's last record.
	var need Token
	for _, c := range created {
		need = need.Join(Token{c.At})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := r.PageNeed(ctx, Query{Limit: 1}, Need{Token: need})
		if err == nil && p.Served() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not reach %v: %+v %v", need, p, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, c := range created {
		g, err := r.GetDoc(ctx, c.ID, Need{Token: Token{c.At}})
		if err != nil || g.Status != Served || string(g.Doc) != string(c.Doc) {
			t.Fatalf("GetDoc(%s) = %+v, %v; want its document", c.ID, g, err)
		}
	}
	// Records were created one at a time, so newest first is the reverse of create
	// order; every query's pages, of any size, visit exactly its records in it.
	for _, tt := range []struct {
		q     Query
		match func(i int) bool
	}{
		{Query{}, func(int) bool { return true }},
		{Query{Type: "cmt"}, func(i int) bool { return i%2 == 1 }},
		{Query{Words: []string{"quad"}}, func(i int) bool { return i%4 == 0 }},
		{Query{Type: "bp", Words: []string{"quad", "record"}}, func(i int) bool { return i%4 == 0 }},
	} {
		var want []string
		for i := n - 1; i >= 0; i-- {
			if tt.match(i) {
				want = append(want, created[i].ID)
			}
		}
		for _, limit := range []int{1, 7, 25, 100} {
			q := tt.q
			q.Limit = limit
			var got []string
			for pages := 0; pages <= n; pages++ {
				p, err := r.Page(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Records) > limit {
					t.Fatalf("%+v: a page of %d", q, len(p.Records))
				}
				for _, rec := range p.Records {
					got = append(got, rec.ID)
				}
				if p.Next == nil {
					break
				}
				if len(p.Next) != 3 {
					t.Fatalf("cursor %v, want a position per partition", p.Next)
				}
				q.Cursor = p.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v limit %d: ids %v, want %v", tt.q, limit, got, want)
			}
		}
	}
	// Records created after the first page do not turn up on the pages that follow.
	p1, err := r.Page(ctx, Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	late := mustCreate(t, m, "bp", "late", "")
	waitAt(t, r, late.At)
	rest := Query{Limit: 100, Cursor: p1.Next}
	for pages := 0; pages < 10; pages++ {
		p, err := r.Page(ctx, rest)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range p.Records {
			if rec.ID == late.ID {
				t.Fatalf("a record created after the first page is on a later one")
			}
		}
		if p.Next == nil {
			break
		}
		rest.Cursor = p.Next
	}

	// A function configured for two partitions cannot write this store, and says so
	// at start.
	two := New(NewClient(Options{Addr: pair.Master.Addr()})).withParts(2)
	if err := two.CheckPartitions(ctx); err == nil || !strings.Contains(err.Error(), "REDIS_PARTITIONS=3") {
		t.Errorf("CheckPartitions with 2 on a store of 3: %v, want an error naming REDIS_PARTITIONS=3", err)
	}
	if err := m.CheckPartitions(ctx); err != nil {
		t.Errorf("CheckPartitions with the store's own count: %v", err)
	}
	twoRecord := func(i int) NewRecord {
		return NewRecord{Tag: "x", Type: "bp", Text: "two", Claim: HTTPClaim(fmt.Sprint("two", i))}
	}
	if _, err := two.Create(ctx, twoRecord(0), 0, 0); fail.Code(err) != fail.EUNAVAILABLE || !strings.Contains(err.Error(), "REDIS_PARTITIONS=3") {
		t.Fatalf("create with 2 partitions configured on a store of 3: %v; want it unavailable, naming REDIS_PARTITIONS=3", err)
	}
	// The create script checks the count too, for a store whose count changed after
	// the function's check passed (a store flushed and made again by another).
	two.partsOK.Store(true)
	for i := range 8 { // every partition it picks holds the count 3
		_, err := two.Create(ctx, twoRecord(i+1), 0, 0)
		if fail.Code(err) != fail.EUNAVAILABLE || !strings.Contains(err.Error(), "REDIS_PARTITIONS=3") {
			t.Fatalf("create past the check with 2 partitions on a store of 3: %v; want it unavailable, naming REDIS_PARTITIONS=3", err)
		}
	}
}

// waitAt waits until s has applied at.
func waitAt(t *testing.T, s *Store, at Position) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ps, err := s.Positions(context.Background())
		if err == nil && ps[at.Part].Epoch == at.Epoch && ps[at.Part].Seq >= at.Seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica at %v (err %v), want %v", ps, err, at)
		}
		time.Sleep(time.Millisecond)
	}
}
