package testenv

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Event is a CloudEvent of type typ from source with id, and data as JSON (none when
// data is nil).
func Event(typ, source, id string, data any) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetType(typ)
	e.SetSource(source)
	e.SetID(id)
	if data != nil {
		e.SetData(cloudevents.ApplicationJSON, data)
	}
	return e
}

// Deliver posts e to url with the SDK's HTTP client in the mode force sets
// (binding.WithForceBinary or WithForceStructured), as a Broker delivers it, and
// returns the reply event and the HTTP status (0 when nothing answered). It reports
// with Errorf, so it may run on a test's other goroutines.
func Deliver(tb testing.TB, c cloudevents.Client, url string, force func(context.Context) context.Context, e cloudevents.Event) (*cloudevents.Event, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, res := c.Request(force(cloudevents.ContextWithTarget(ctx, url)), e)
	var hr *cehttp.Result
	if !cloudevents.ResultAs(res, &hr) {
		tb.Errorf("deliver %s to %s: no HTTP result: %v", e.ID(), url, res)
		return nil, 0
	}
	return out, hr.StatusCode
}
