package read

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Result is a page as the read side returns it. The records are the documents the
// write side stored, passed through without decoding.
type Result struct {
	Records    []json.RawMessage `json:"records"`
	NextCursor string            `json:"nextCursor,omitempty"`
	// Partial says the search spent its budget before the page was full; more
	// records may match below NextCursor.
	Partial bool `json:"partial,omitempty"`
}

// writeResult writes res as encoding/json would, without re-validating documents
// that the write side encoded.
func writeResult(w http.ResponseWriter, res Result) {
	n := len(`{"records":[],"nextCursor":"","partial":true}`) + 24
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
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}
