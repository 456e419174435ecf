package read

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Result is a page as the read side returns it. The records are the documents the
// write side stored, passed through without decoding.
type Result struct {
	Records    []json.RawMessage `json:"records"`
	NextCursor string            `json:"nextCursor,omitempty"`
	// Partial says a search stopped at its budget or time before the page was full;
	// more records may match below NextCursor.
	Partial bool `json:"partial,omitempty"`
	// Token is where the page's partitions had got: a read with it sees at least
	// this much.
	Token store.Token `json:"-"`
}

// JSON is res as encoding/json would write it (with "token"), without re-validating
// documents that the write side encoded. Cursors and tokens hold only digits,
// letters, ':', '.' and ',': nothing to escape.
func (res Result) JSON() []byte { return res.appendJSON(nil, res.Token.String()) }

// appendJSON appends JSON with token, res.Token as a string, which the caller has
// already formatted for its header, to b.
func (res Result) appendJSON(b []byte, token string) []byte {
	n := len(`{"records":[],"nextCursor":"","partial":true,"token":""}`) + len(res.NextCursor) + len(token) + 2
	for _, d := range res.Records {
		n += len(d) + 1
	}
	b = slices.Grow(b, n)
	b = append(b, `{"records":[`...)
	for i, d := range res.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d...)
	}
	b = append(b, ']')
	if res.NextCursor != "" {
		b = append(b, `,"nextCursor":"`...)
		b = append(b, res.NextCursor...)
		b = append(b, '"')
	}
	if res.Partial {
		b = append(b, `,"partial":true`...)
	}
	if token != "" {
		b = append(b, `,"token":"`...)
		b = append(b, token...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// answers are buffers for pages' answers: a page is several kilobytes, and its
// answer is done with once written.
var answers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled bounds the buffers kept: a page of 100 long records is not the rule.
const maxPooled = 64 << 10

// writeJSON writes res with token as the answer, from a pooled buffer: the
// ResponseWriter copies what it is given and keeps none of it.
func (res Result) writeJSON(w http.ResponseWriter, token string) {
	buf := answers.Get().(*[]byte)
	b := append(res.appendJSON((*buf)[:0], token), '\n')
	serve.RawJSON(w, http.StatusOK, b)
	if cap(b) <= maxPooled {
		*buf = b[:0]
		answers.Put(buf)
	}
}
