package read

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// DefaultEventSource is the source of reply events when K_SERVICE is not set.
const DefaultEventSource = "/cqrs-read"

// Extensions of a dev.cqrs.records.result event; they carry what X-Served-By and
// X-Replica-Seq carry on the HTTP API. replicaseq is a string because a CloudEvents
// integer has only 32 bits.
const (
	ExtServedBy   = "servedby"
	ExtReplicaSeq = "replicaseq"
)

// handleQueryEvent answers a dev.cqrs.records.query event with a
// dev.cqrs.records.result event whose data is the page GET /records would return.
func (f *Function) handleQueryEvent(ctx context.Context, h http.Header, ev *cloudevent.Event) (*event.Event, string, error) {
	q, err := f.parseQueryData(ev.Data())
	if err != nil {
		return nil, "", err
	}
	res, served, err := f.Query(ctx, q)
	if err != nil {
		return nil, "", cloudevent.DataError(err)
	}
	out := cloudevent.NewReply(f.source, record.EventResult, time.Now(), res.JSON())
	out.SetExtension(ExtServedBy, served.By)
	if served.HasSeq {
		out.SetExtension(ExtReplicaSeq, strconv.FormatInt(served.Seq, 10))
	}
	if len(served.Token) > 0 {
		out.SetExtension(record.TokenExtension, served.Token.String())
	}
	setServed(h, served)
	return out, "answered", nil
}

// queryObject is the data of a query event, for the messages of its errors.
var queryObject = serve.Object{What: "event data", Field: "data", Prefix: "data.",
	Example: `{"type":"bp","q":"words","limit":25}`, Holds: "a query has type, q, limit, cursor, token and minSeq"}

// parseQueryData decodes the event's data strictly (no unknown or repeated fields,
// numbers as numbers) into the input GET /records fills from its parameters, so
// events and GET /records accept exactly the same queries. No data at all is the
// newest page of every type.
func (f *Function) parseQueryData(data []byte) (Query, error) {
	in := input{tokenField: "token", minSeqField: "minSeq"}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := queryObject.Decode(data, &in); err != nil {
			return Query{}, err
		}
	}
	q, err := f.query(in)
	return q, cloudevent.DataError(err)
}
