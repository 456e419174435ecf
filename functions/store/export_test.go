package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// The tests read pages and records decoded; the functions pass the stored documents
// through without decoding, so these live with the tests.

// Page is one page of a Query, decoded.
type Page struct {
	Records []record.Record
	Next    Cursor
	At      Token
	Cut     bool
	Status  []Status
}

// Page runs q with no consistency need and decodes the records.
func (s *Store) Page(ctx context.Context, q Query) (Page, error) {
	return s.PageNeed(ctx, q, Need{})
}

// PageNeed runs q for need and decodes the records.
func (s *Store) PageNeed(ctx context.Context, q Query, need Need) (Page, error) {
	dp, err := s.PageDocs(ctx, q, need)
	if err != nil {
		return Page{}, err
	}
	p := Page{Next: dp.Next, At: dp.At, Cut: dp.Cut, Status: dp.Status, Records: make([]record.Record, len(dp.Docs))}
	for i, d := range dp.Docs {
		if err := json.Unmarshal(d, &p.Records[i]); err != nil {
			return Page{}, fmt.Errorf("record document %q: %w", d, err)
		}
	}
	return p, nil
}

// Get returns the record with id (the zero record when there is none) as s holds it.
func (s *Store) Get(ctx context.Context, id string) (record.Record, error) {
	g, err := s.GetDoc(ctx, id, Need{})
	if err != nil || g.Doc == nil {
		return record.Record{}, err
	}
	var r record.Record
	if err := json.Unmarshal(g.Doc, &r); err != nil {
		return record.Record{}, fmt.Errorf("record document %q: %w", g.Doc, err)
	}
	return r, nil
}

// Seq returns the last seq partition 0 of s has applied.
func (s *Store) Seq(ctx context.Context) (int64, error) {
	ps, err := s.Positions(ctx)
	if err != nil {
		return 0, err
	}
	return ps[0].Seq, nil
}

// withParts makes s a store of n partitions, as cluster mode will.
func (s *Store) withParts(n int) *Store { s.parts = n; return s }

// Served reports whether every partition could serve the page.
func (p Page) Served() bool { return DocPage{Status: p.Status}.Served() }
