package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// searchWords and searchTypes make up the fuzzed store: record i (seq i) has type
// searchTypes[i%2] and holds the words whose bit is set in wordsOf(i).
var (
	searchWords = []string{"alpha", "beta", "gamma", "delta", "eps"}
	searchTypes = []string{"bp", "cmt"}
)

const searchRecords = 400

func wordsOf(i int) uint8 { return uint8((i*7 + i/3) % 32) }

var (
	fuzzOnce  sync.Once
	fuzzStore *Store
	fuzzErr   error
)

// searchStore is one master filled once per test binary, shared by the fuzz runs.
func searchStore(t *testing.T) *Store {
	testenv.RequireRedis(t)
	fuzzOnce.Do(func() {
		m, err := startFuzzMaster()
		if err != nil {
			fuzzErr = err
			return
		}
		fuzzStore = New(NewClient(Options{Addr: m}))
		ctx := context.Background()
		for i := 1; i <= searchRecords; i++ {
			var words []string
			for b, w := range searchWords {
				if wordsOf(i)&(1<<b) != 0 {
					words = append(words, w)
				}
			}
			words = append(words, "all")
			if _, err := fuzzStore.Create(ctx, NewRecord{Tag: fmt.Sprintf("f%d", i), Type: searchTypes[i%2],
				Text: strings.Join(words, " ")}, 0, 0); err != nil {
				fuzzErr = err
				return
			}
		}
	})
	if fuzzErr != nil {
		t.Fatal(fuzzErr)
	}
	return fuzzStore
}

// FuzzSearch checks the page script against a brute-force answer: for any type,
// words, limit, scan budget and starting cursor, following nextCursor visits exactly
// the matching records, newest first, each once, in pages of at most limit, with a
// cursor that always moves down.
func FuzzSearch(f *testing.F) {
	f.Add(uint8(0), uint8(0b00011), uint8(25), uint16(5000), uint16(0))
	f.Add(uint8(1), uint8(0b10101), uint8(1), uint16(1), uint16(0))
	f.Add(uint8(2), uint8(0b11111), uint8(100), uint16(7), uint16(200))
	f.Add(uint8(0), uint8(0), uint8(3), uint16(50), uint16(399))
	f.Fuzz(func(t *testing.T, typ, mask, limit uint8, budget, before uint16) {
		s := searchStore(t)
		q := Query{Limit: int(limit%100) + 1}
		start := int64(before % (searchRecords + 2))
		if start > 0 {
			q.Cursor = Cursor{{Seq: start}}
		}
		if int(typ)%3 < len(searchTypes) {
			q.Type = searchTypes[int(typ)%3]
		}
		for b, w := range searchWords {
			if mask&(1<<b) != 0 {
				q.Words = append(q.Words, w)
			}
		}
		if len(q.Words) == 0 && q.Type == "" {
			q.Words = []string{"all"}
		}
		var want []int64
		for i := searchRecords; i >= 1; i-- {
			if (start == 0 || int64(i) < start) && wordsOf(i)&mask&0b11111 == mask&0b11111 &&
				(q.Type == "" || searchTypes[i%2] == q.Type) {
				want = append(want, int64(i))
			}
		}
		s.budget = int(budget%20000) + 1
		var got []int64
		for pages := 0; ; pages++ {
			if pages > 2*searchRecords+2 {
				t.Fatalf("%+v budget %d: no end after %d pages", q, s.budget, pages)
			}
			p, err := s.Page(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Records) > q.Limit {
				t.Fatalf("%+v: page of %d records", q, len(p.Records))
			}
			for _, r := range p.Records {
				got = append(got, r.Seq)
			}
			if p.Next == nil {
				break
			}
			if q.Cursor != nil && q.Cursor[0].Seq != 0 && p.Next[0].Seq >= q.Cursor[0].Seq {
				t.Fatalf("%+v budget %d: cursor %v does not move below %v", q, s.budget, p.Next, q.Cursor)
			}
			q.Cursor = p.Next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%+v budget %d: seqs %v, want %v", q, s.budget, got, want)
		}
	})
}

// fuzzMaster is the master of searchStore, stopped by TestMain.
var fuzzMaster *redisproc.Server

func startFuzzMaster() (string, error) {
	dir, err := os.MkdirTemp("", "cqrs-fuzz-")
	if err != nil {
		return "", err
	}
	m, err := redisproc.StartMaster(dir, 0)
	// Fuzzing workers end without cleaning up; this master keeps nothing on disk
	// (no saves, a log it holds open), so its directory can go at once.
	os.RemoveAll(dir)
	if err != nil {
		return "", err
	}
	fuzzMaster = m
	return m.Addr(), nil
}

// TestMain stops the master the fuzz target shares between its runs.
func TestMain(m *testing.M) {
	// go-redis' own messages (a node refused while a test has it down) stay out of
	// the output, as the functions keep them at debug level.
	SetLogger(slog.New(slog.DiscardHandler))
	code := m.Run()
	if fuzzMaster != nil {
		fuzzMaster.Kill()
	}
	os.Exit(code)
}
