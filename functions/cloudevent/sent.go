package cloudevent

import (
	"encoding/json"
	"net/http"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// sentAttributes are the attributes that identify an event, as the sender wrote them.
type sentAttributes struct {
	source, id string
}

// binaryAttributes reads ce-source and ce-id from the headers of a binary-mode event;
// a header given twice is refused, as the SDK would silently take one of them.
func binaryAttributes(h http.Header) (sentAttributes, error) {
	var a sentAttributes
	for _, f := range []struct {
		header string
		field  string
		to     *string
	}{{"Ce-Source", "source", &a.source}, {"Ce-Id", "id", &a.id}} {
		v := h.Values(f.header)
		if len(v) > 1 {
			return a, fail.Invalidf(f.field, "%s is given %d times; give it once", f.header, len(v))
		}
		if len(v) == 1 {
			*f.to = v[0]
		}
	}
	return a, nil
}

// structuredAttributes reads source and id from a structured-mode event, and refuses
// one that carries both data and data_base64: the SDK would keep one and drop the
// other without a word.
func structuredAttributes(body []byte) (sentAttributes, error) {
	var a sentAttributes
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return a, nil // not an object: the SDK says what is wrong with it
	}
	if _, hasData := top["data"]; hasData {
		if _, hasBase64 := top["data_base64"]; hasBase64 {
			return a, fail.Invalid("data_base64", "an event carries data or data_base64, not both")
		}
	}
	json.Unmarshal(top["source"], &a.source)
	json.Unmarshal(top["id"], &a.id)
	return a, nil
}
