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
	// Next is the cursor of the following page; 0 when there is none.
	Next int64
	// Seq is the last seq this Redis has applied when it answered.
	Seq int64
	// Cut says the search spent its budget before the page was full.
	Cut bool
}

// Page runs q and decodes the records.
func (s *Store) Page(ctx context.Context, q Query) (Page, error) {
	dp, err := s.PageDocs(ctx, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Next: dp.Next, Seq: dp.Seq, Cut: dp.Cut, Records: make([]record.Record, len(dp.Docs))}
	for i, d := range dp.Docs {
		if err := json.Unmarshal(d, &p.Records[i]); err != nil {
			return Page{}, fmt.Errorf("record document %q: %w", d, err)
		}
	}
	return p, nil
}

// Get returns the record with id and the seq this Redis has applied.
func (s *Store) Get(ctx context.Context, id string) (record.Record, int64, error) {
	doc, seq, err := s.GetDoc(ctx, id)
	if err != nil || doc == nil {
		return record.Record{}, seq, err
	}
	var r record.Record
	if err := json.Unmarshal(doc, &r); err != nil {
		return record.Record{}, seq, fmt.Errorf("record document %q: %w", doc, err)
	}
	return r, seq, nil
}
