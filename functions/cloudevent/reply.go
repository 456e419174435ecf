package cloudevent

import (
	"crypto/rand"
	"fmt"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// NewReply returns a reply event of type typ from source, with a fresh id, time now
// and data encoded as JSON. data must be a value, not bytes: the SDK would send bytes
// as data_base64.
func NewReply(source, typ string, now time.Time, data any) (*event.Event, error) {
	out := event.New()
	out.SetID(rand.Text())
	out.SetSource(source)
	out.SetType(typ)
	out.SetTime(now)
	if err := out.SetData(event.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("set reply data: %w", err)
	}
	return &out, nil
}

// Source is the source of a function's reply events: K_SERVICE, which Knative sets
// to the Service's name, or def outside Knative.
func Source(def string) string {
	if s := os.Getenv("K_SERVICE"); s != "" {
		return s
	}
	return def
}
