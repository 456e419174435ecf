package store

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// pageLua returns one page of one partition's documents, newest first, in one round
// trip; see page.lua. With one index it reads the page's seqs straight from it; with
// several (a type and words, or words) it walks the smallest downwards from the
// cursor and seeks each entry in the others, which say where the next possible match
// is, so a search costs what the page costs, not what the store holds, and stops at
// its budget or its time, whichever comes first. The documents come with one HMGET.
//
// It returns {seq, epoch, status, nextCursor ("" at the end), doc, doc, ...}; status
// is one of the Status values' names.
//
//go:embed page.lua
var pageLua string

var pageScript = redis.NewScript(pageLua)

// Query selects a page of records, newest first.
type Query struct {
	Type   string   // "" for every type
	Words  []string // tokenized; every word must occur
	Limit  int
	Cursor Cursor // nil for the newest
}

// Need is what the Redis that answers a read must have applied: Token's positions,
// and, in a store of one partition, MinSeq (the numeric form old clients send, which
// cannot tell a store started afresh from the one they wrote to).
type Need struct {
	Token  Token
	MinSeq int64
}

// Want is the epoch and seq partition p must have for need.
func (n Need) Want(p int) (epoch string, seq int64) {
	if pos, ok := n.Token.At(p); ok {
		epoch, seq = pos.Epoch, pos.Seq
	}
	if p == 0 {
		seq = max(seq, n.MinSeq)
	}
	return epoch, seq
}

// Status says whether a partition's answer can serve a read.
type Status int

const (
	// Served: the Redis has the history and position the read needs.
	Served Status = iota
	// Behind: it has the history but not yet the position; it may catch up.
	Behind
	// OtherHistory: its epoch is not the one the read needs: another history, or none
	// yet. Only a Redis with that epoch can answer.
	OtherHistory
	// Moving: it holds part of the partition (moving between shards); ask again.
	Moving
)

var statusNames = map[string]Status{"ok": Served, "cut": Served, "behind": Behind, "other": OtherHistory, "moving": Moving}

// DocPage is one page of a Query as stored: each record's JSON document, ready to
// be sent without decoding.
type DocPage struct {
	Docs []json.RawMessage
	// Next is the cursor of the following page; nil when there is none.
	Next Cursor
	// Cut says a search stopped at its budget or time before the page was full: Next
	// goes on where it stopped.
	Cut bool
	// At is where each partition of the Redis that answered had got.
	At Token
	// Status is each partition's; the page holds records only when all are Served.
	Status []Status
}

// Served reports whether every partition could serve the read.
func (p DocPage) Served() bool {
	return !slices.ContainsFunc(p.Status, func(s Status) bool { return s != Served })
}

// scanBudget bounds the work of one search page in units (entries walked, indexes
// probed, index reads), and searchTime its time in Redis, read from Redis' own
// clock; whichever ends first cuts the page. A page of a store of several partitions
// shares both among them.
const (
	scanBudget = 5000
	searchTime = 2 * time.Millisecond
)

// SearchTime is the longest a search page holds the Redis that answers it.
const SearchTime = searchTime

// PageDocs runs q: one page script per partition, in one round trip to each Redis.
func (s *Store) PageDocs(ctx context.Context, q Query, need Need) (DocPage, error) {
	if err := s.checkPartitionsOnce(ctx); err != nil {
		return DocPage{}, err
	}
	if q.Cursor != nil && len(q.Cursor) != s.parts {
		return DocPage{}, fmt.Errorf("page: cursor of %d partitions for a store of %d", len(q.Cursor), s.parts)
	}
	calls := make([]call, s.parts)
	for i := range s.parts {
		keys, args := s.pageArgs(part(i), q, need)
		calls[i] = evalCall(ctx, part(i), pageScript, true, keys, args...)
	}
	parts := make([]partPage, s.parts)
	for i, cmds := range s.run(ctx, calls) {
		vals, err := cmds[0].(*redis.Cmd).StringSlice()
		if err != nil {
			return DocPage{}, classify(err)
		}
		if parts[i], err = readPartPage(i, vals); err != nil {
			return DocPage{}, err
		}
	}
	return merge(parts, q), nil
}

// pageArgs are the keys and arguments of partition p's part of q.
func (s *Store) pageArgs(p part, q Query, need Need) ([]string, []any) {
	keys := make([]string, 0, 5+len(q.Words))
	keys = append(keys, p.key(seqName), p.key(epochName), p.key(docsName))
	if q.Type != "" {
		keys = append(keys, p.typeKey(q.Type))
	}
	for _, w := range q.Words {
		keys = append(keys, p.wordKey(w))
	}
	if len(keys) == 3 {
		keys = append(keys, p.key(allName))
	}
	epoch, minSeq := need.Want(int(p))
	var before int64
	if q.Cursor != nil {
		before = q.Cursor[p].Seq
		if epoch == "" {
			epoch = q.Cursor[p].Epoch
		}
	}
	budget := max(s.budget/s.parts, 1)
	micros := max(searchTime.Microseconds()/int64(s.parts), 50)
	return keys, []any{before, q.Limit, budget, micros, minSeq, epoch}
}

// partPage is one partition's answer.
type partPage struct {
	part   int
	status Status
	cut    bool
	at     Position
	next   int64 // the partition's own cursor; 0 at its end
	docs   [][]byte
}

func readPartPage(p int, vals []string) (partPage, error) {
	if len(vals) < 4 {
		return partPage{}, fmt.Errorf("page script: unexpected reply %q", vals)
	}
	status, ok := statusNames[vals[2]]
	if !ok {
		return partPage{}, fmt.Errorf("page script: unknown status %q", vals[2])
	}
	pp := partPage{part: p, status: status, cut: vals[2] == "cut"}
	pp.at.Part, pp.at.Epoch = p, vals[1]
	pp.at.Seq, _ = strconv.ParseInt(vals[0], 10, 64)
	pp.next, _ = strconv.ParseInt(vals[3], 10, 64)
	pp.docs = make([][]byte, len(vals)-4)
	for i, d := range vals[4:] {
		pp.docs[i] = []byte(d)
	}
	return pp, nil
}

// merge makes one page of the partitions' pages, newest first by create time (ties
// by partition, then by seq), and the cursor that goes on below what it took from
// each partition. With one partition that is its page as it is.
func merge(parts []partPage, q Query) DocPage {
	out := DocPage{Status: make([]Status, len(parts))}
	for i, pp := range parts {
		out.Status[i] = pp.status
		if pp.at.Epoch != "" {
			out.At = append(out.At, pp.at)
		}
		out.Cut = out.Cut || pp.cut
	}
	if !out.Served() {
		return out
	}
	taken := make([]int, len(parts))
	for len(out.Docs) < q.Limit {
		best := -1
		for i, pp := range parts {
			if taken[i] < len(pp.docs) && (best < 0 || newer(pp.docs[taken[i]], parts[best].docs[taken[best]])) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out.Docs = append(out.Docs, parts[best].docs[taken[best]])
		taken[best]++
	}
	next := make(Cursor, len(parts))
	more := false
	for i, pp := range parts {
		next[i] = Position{Part: i, Epoch: pp.at.Epoch}
		switch {
		case taken[i] < len(pp.docs):
			// Records of this partition are left over: go on below the last one taken,
			// or where the page started when none was taken.
			if taken[i] > 0 {
				next[i].Seq = docSeq(pp.docs[taken[i]-1])
			} else {
				next[i].Seq = startOf(q.Cursor, i, pp.at.Seq)
			}
		case pp.next > 0:
			next[i].Seq = pp.next
		default:
			next[i].Seq = 1 // done: nothing below seq 1
		}
		more = more || next[i].Seq != 1
	}
	if more {
		out.Next = next
	}
	return out
}

// startOf is where partition i's records of a page started: the cursor's position, or,
// on a first page, just above the newest seq the partition had then, so that records
// stored later do not turn up on the pages that follow.
func startOf(c Cursor, i int, seq int64) int64 {
	if c != nil && c[i].Seq != 0 {
		return c[i].Seq
	}
	return seq + 1
}

// newer reports whether document a, of another partition than b, was created after
// b: create.lua writes the time as fixed-width text, so text order is time order.
// Equal times keep the partitions' order, and a partition's own documents come in
// seq order, so ties break by partition, then by seq.
func newer(a, b []byte) bool {
	return bytes.Compare(createdAt(a), createdAt(b)) > 0
}

// createdAt is the create time in a document, which create.lua writes last.
func createdAt(doc []byte) []byte {
	const member = `"createdAt":"`
	i := bytes.LastIndex(doc, []byte(member))
	if i < 0 {
		return nil
	}
	rest := doc[i+len(member):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return nil
}

// docSeq is the seq in a document, which starts {"id":"...","seq":N.
func docSeq(doc []byte) int64 {
	const member = `"seq":`
	i := bytes.Index(doc, []byte(member))
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range doc[i+len(member):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
