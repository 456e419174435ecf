package read

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Query is a validated read request.
type Query struct {
	store.Query
	MinSeq int64
}

// Limits of a query.
const (
	DefaultLimit  = 25
	MaxLimit      = 100
	maxQueryBytes = 1024
	maxQueryWords = 16
)

// queryValues parses a raw query string strictly. A malformed escape or a parameter
// given twice is refused: dropping or picking one would answer a query the client did
// not send.
func queryValues(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fail.Invalidf("query", "malformed query string: %v", err)
	}
	for _, k := range []string{"type", "q", "limit", "cursor", "minSeq"} {
		if n := len(v[k]); n > 1 {
			return nil, fail.Invalidf(k, "%s is given %d times; give it once", k, n)
		}
	}
	return v, nil
}

// ParseQuery validates the query parameters of GET /records; header is X-Min-Seq.
func (f *Function) ParseQuery(v url.Values, header string) (Query, error) {
	q := Query{Query: store.Query{Limit: DefaultLimit, Type: v.Get("type")}}
	if q.Type != "" && !f.types[q.Type] {
		return q, fail.Invalidf("type", "unknown type %q; known: %s", q.Type, strings.Join(f.cfg.RecordTypes, ", "))
	}
	if s := v.Get("q"); s != "" {
		if len(s) > maxQueryBytes {
			return q, fail.Invalidf("q", "q is over %d bytes", maxQueryBytes)
		}
		q.Words = record.Tokenize(s)
		if len(q.Words) == 0 {
			return q, fail.Invalid("q", "q holds no words (letters or digits)")
		}
		if len(q.Words) > maxQueryWords {
			return q, fail.Invalidf("q", "q holds more than %d words", maxQueryWords)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fail.Invalidf("limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return q, fail.Invalid("cursor", "cursor is not one this function returned as nextCursor")
		}
		q.Before = n
	}
	var err error
	q.MinSeq, err = parseMinSeq(v.Get("minSeq"), header)
	return q, err
}

func parseMinSeq(param, header string) (int64, error) {
	s, field := param, "minSeq"
	if s == "" {
		s, field = header, "X-Min-Seq"
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fail.Invalidf(field, "%s must be a whole number, the seq of a record", field)
	}
	return n, nil
}

// searchSlots bounds the searches one instance runs in Redis at once. A search page
// costs Redis up to a few milliseconds (store's scan budget) where a plain page costs
// tens of microseconds; Redis runs one script at a time, so with this bound a plain
// read waits behind at most this many searches of this instance, however many
// clients search at once. The others wait here, within their request's deadline.
const searchSlots = 2

// searchSlot waits for a search slot until ctx ends; release gives it back.
func (f *Function) searchSlot(ctx context.Context) (release func(), err error) {
	select {
	case f.searches <- struct{}{}:
		return func() { <-f.searches }, nil
	case <-ctx.Done():
		return nil, fail.Unavailable("too many searches at once; retry shortly", ctx.Err())
	}
}

// Query answers q, newest first.
func (f *Function) Query(ctx context.Context, q Query) (Result, Served, error) {
	var page store.DocPage
	sq := q.Query
	sq.MinSeq = q.MinSeq
	search := len(q.Words) > 0
	served, err := f.consistent(ctx, q.MinSeq, search, func(ctx context.Context, s *store.Store) (int64, error) {
		if search {
			release, err := f.searchSlot(ctx)
			if err != nil {
				return 0, err
			}
			defer release()
		}
		var err error
		page, err = s.PageDocs(ctx, sq)
		return page.Seq, err
	})
	if err != nil {
		return Result{}, served, err
	}
	res := Result{Records: page.Docs, Partial: page.Cut}
	if page.Next > 0 {
		res.NextCursor = strconv.FormatInt(page.Next, 10)
	}
	return res, served, nil
}
