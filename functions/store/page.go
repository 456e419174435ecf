package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// pageLua returns one page of record documents, newest first, in one round trip; see
// page.lua. With one index it takes the ids straight from it; with several (a type
// and words, or words) it walks the smallest downwards from the cursor and keeps the
// ids that every other index also holds, so a search costs what the page costs, not
// what the store holds. One script call costs Redis a little more than the same
// commands pipelined, and saves the function a whole round trip, which is the larger
// cost per request.
//
// It returns {replicaSeq, nextCursor ("" at the end), doc, doc, ...}.
//
//go:embed page.lua
var pageLua string

var pageScript = redis.NewScript(pageLua)

// Query selects a page of records, newest first.
type Query struct {
	Type   string   // "" for every type
	Words  []string // tokenized; every word must occur
	Limit  int
	Before int64 // cursor: only records with seq < Before; 0 for the newest
}

// DocPage is one page of a Query as stored: each record's JSON document, ready to
// be sent without decoding.
type DocPage struct {
	Docs []json.RawMessage
	Next int64
	Seq  int64
}

// scanBudget bounds how many index entries one search page examines, so a rare word
// combination cannot make a single request walk the whole store.
const scanBudget = 10000

// PageDocs runs q in one round trip.
func (s *Store) PageDocs(ctx context.Context, q Query) (DocPage, error) {
	keys := make([]string, 0, 3+len(q.Words))
	keys = append(keys, seqKey)
	if q.Type != "" {
		keys = append(keys, typeKey(q.Type))
	}
	for _, w := range q.Words {
		keys = append(keys, wordKey(w))
	}
	if len(keys) == 1 {
		keys = append(keys, allKey)
	}
	upper := "+inf"
	if q.Before > 0 {
		upper = "(" + strconv.FormatInt(q.Before, 10)
	}
	vals, err := pageScript.RunRO(ctx, s.rdb, keys, upper, q.Limit, s.budget, recPrefix).StringSlice()
	if err != nil {
		return DocPage{}, classify(err)
	}
	if len(vals) < 2 {
		return DocPage{}, fmt.Errorf("page script: unexpected reply %q", vals)
	}
	dp := DocPage{Docs: make([]json.RawMessage, len(vals)-2)}
	dp.Seq, _ = strconv.ParseInt(vals[0], 10, 64)
	dp.Next, _ = strconv.ParseInt(vals[1], 10, 64)
	for i, d := range vals[2:] {
		dp.Docs[i] = json.RawMessage(d)
	}
	return dp, nil
}
