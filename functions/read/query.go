package read

import (
	"context"
	"slices"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Query is a validated read of a page: what it selects, where it starts, and what
// the Redis that answers must have applied.
type Query struct {
	store.Query
	Need store.Need
}

// Limits of a query.
const (
	DefaultLimit  = 25
	MaxLimit      = 100
	maxQueryBytes = 1024
	maxQueryWords = 16
)

// input is a read as either door received it, before validation: GET /records
// (query parameters and headers) or a dev.cqrs.records.query event (its data). Each
// value names where it came from, so errors name what the client sent.
type input struct {
	Type   string `json:"type"`
	Q      string `json:"q"`
	Limit  *int   `json:"limit"`
	Cursor string `json:"cursor"`
	Token  string `json:"token"`
	MinSeq *int64 `json:"minSeq"`

	tokenField, minSeqField string // the parameter or header each came from
}

// query validates in as a read of a page.
func (f *Function) query(in input) (Query, error) {
	q := Query{Query: store.Query{Limit: DefaultLimit, Type: in.Type}}
	if q.Type != "" && !slices.Contains(f.cfg.RecordTypes, q.Type) {
		return q, fail.Invalidf("type", "unknown type %q; known: %s", q.Type, strings.Join(f.cfg.RecordTypes, ", "))
	}
	if in.Q != "" {
		if len(in.Q) > maxQueryBytes {
			return q, fail.Invalidf("q", "q is over %d bytes", maxQueryBytes)
		}
		q.Words = record.Tokenize(in.Q)
		if len(q.Words) == 0 {
			return q, fail.Invalid("q", "q holds no words (letters or digits)")
		}
		if len(q.Words) > maxQueryWords {
			return q, fail.Invalidf("q", "q holds more than %d words", maxQueryWords)
		}
	}
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > MaxLimit {
			return q, fail.Invalidf("limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		q.Limit = *in.Limit
	}
	var err error
	if q.Need, err = f.need(in); err != nil {
		return q, err
	}
	if in.Cursor != "" {
		if q.Cursor, err = store.ParseCursor(in.Cursor, f.parts); err != nil {
			return q, fail.Invalidf("cursor", "cursor is not one this function returned as nextCursor (%v)", err)
		}
		for _, c := range q.Cursor {
			if t, ok := q.Need.Token.At(c.Part); ok && c.Epoch != "" && c.Epoch != t.Epoch {
				return q, &fail.Error{Code: fail.ERESET, Field: "cursor",
					Message: "the cursor and the token come from different histories of the store; start again from the first page"}
			}
		}
	}
	return q, nil
}

// need validates what the answering Redis must have applied: the token, and the
// numeric minSeq of clients that predate tokens (a store of one partition only).
func (f *Function) need(in input) (store.Need, error) {
	var n store.Need
	if in.Token != "" {
		t, err := store.ParseToken(in.Token, f.parts)
		if err != nil {
			return n, fail.Invalidf(in.tokenField, "%s: %v; send a token an answer carried, or none", in.tokenField, err)
		}
		n.Token = t
	}
	if in.MinSeq != nil {
		switch {
		case f.parts > 1 || f.clustered:
			return n, fail.Invalidf(in.minSeqField, "%s names a seq of a store on one Redis; this one is on a Redis Cluster: send the token instead", in.minSeqField)
		case *in.MinSeq < 0:
			return n, fail.Invalidf(in.minSeqField, "%s must be a whole number, the seq of a record", in.minSeqField)
		}
		n.MinSeq = *in.MinSeq
	}
	return n, nil
}

// searchSlot waits for a search slot until ctx ends; release gives it back. A
// search page holds Redis up to store.SearchTime where a plain page costs tens of
// microseconds, and Redis runs one script at a time, so a plain read waits behind at
// most READ_SEARCH_SLOTS searches of each instance, however many clients search at
// once. The others wait here, within their request's deadline.
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
	search := len(q.Words) > 0
	served, err := f.consistent(ctx, q.Need, search, func(ctx context.Context, s *store.Store) (outcome, error) {
		if search {
			release, err := f.searchSlot(ctx)
			if err != nil {
				return outcome{}, err
			}
			defer release()
		}
		var err error
		page, err = s.PageDocs(ctx, q.Query, q.Need)
		return pageOutcome(page), err
	})
	if err != nil {
		return Result{}, served, err
	}
	return Result{Records: page.Docs, NextCursor: page.Next.String(), Partial: page.Cut, Token: served.Token}, served, nil
}
