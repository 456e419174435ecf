package cloudevent

import (
	"crypto/rand"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// NewReply returns a reply event of type typ from source, with a fresh id, time now
// and data, one compact JSON document as encoding/json writes it, as its data. The
// data goes out as it is: the SDK's SetData would encode JSON bytes again, or send
// plain bytes as data_base64.
func NewReply(source, typ string, now time.Time, data []byte) *event.Event {
	out := event.New()
	out.SetID(rand.Text())
	out.SetSource(source)
	out.SetType(typ)
	out.SetTime(now)
	out.SetDataContentType(event.ApplicationJSON)
	out.DataEncoded = data
	return &out
}

// Source is the source of a function's reply events: K_SERVICE, which Knative sets
// to the Service's name, or def outside Knative.
func Source(def string) string {
	if s := os.Getenv("K_SERVICE"); s != "" {
		return s
	}
	return def
}
