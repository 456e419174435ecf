package write

import (
	"net/http"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// createExample is a valid create command, for messages.
const createExample = `{"type":"bp","text":"..."}`

// The create command as the body of POST /records and as the data of a
// dev.cqrs.record.create event: the same object, named for where it came from.
var (
	createBody = serve.Object{What: "body", Field: "body", Example: createExample,
		Holds: "a record has type and text"}
	createData = serve.Object{What: "event data", Field: "data", Prefix: "data.", Example: createExample,
		Holds: "a record has type and text"}
)

// decodeCreate reads a JSON create command, refusing what is not one with an error
// that names the field: oversized or stalled bodies, other content types, and all
// that DecodeCreate refuses.
func decodeCreate(w http.ResponseWriter, r *http.Request) (record.Create, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !serve.IsJSON(ct) {
		return record.Create{}, serve.UnsupportedType("Content-Type", ct)
	}
	body, err := serve.ReadBody(w, r)
	if err != nil {
		return record.Create{}, err
	}
	return DecodeCreate(body)
}

// DecodeCreate parses a create command from a JSON body.
func DecodeCreate(body []byte) (c record.Create, err error) {
	err = createBody.Decode(body, &c)
	return c, err
}
