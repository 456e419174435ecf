package read

import (
	"encoding/json"

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

// JSON is res as encoding/json would write it (with "token"), one line, without
// re-validating documents that the write side encoded. Cursors and tokens hold only
// digits, letters, ':', '.' and ',': nothing to escape.
func (res Result) JSON() []byte {
	token := ""
	if len(res.Token) > 0 {
		token = res.Token.String()
	}
	return res.appendJSON(token)
}

// appendJSON is JSON with token, res.Token as a string, which the caller has already
// formatted for its header.
func (res Result) appendJSON(token string) []byte {
	n := len(`{"records":[],"nextCursor":"","partial":true,"token":""}`) + len(res.NextCursor) + len(token) + 2
	for _, d := range res.Records {
		n += len(d) + 1
	}
	b := make([]byte, 0, n)
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
	return append(b, "}\n"...)
}
