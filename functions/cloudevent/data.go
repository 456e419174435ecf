package cloudevent

import (
	"errors"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// DataError names the fields of an event's data as data.<field>, so that a record's
// "type" cannot be mistaken for the event's type attribute.
func DataError(err error) error {
	var e *fail.Error
	if !errors.As(err, &e) || e.Code != fail.EINVALID {
		return err
	}
	c := *e
	switch c.Field {
	case "", "body", "data":
		c.Field = "data"
	default:
		if !strings.HasPrefix(c.Field, "data.") {
			c.Field = "data." + c.Field
		}
	}
	if rest, ok := strings.CutPrefix(c.Message, "body "); ok {
		c.Message = "event data " + rest
	}
	return &c
}
