package reply

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// BodyTimeout bounds how long a client may take to send a request body. The server
// has no overall read timeout, because that would also cut short handlers that wait
// on purpose (a read waiting for minSeq).
var BodyTimeout = 10 * time.Second

// ReadBody reads r's body, at most record.MaxBodyBytes (413 beyond) and within
// BodyTimeout (408 beyond), so a client that stalls cannot hold a request forever.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest's recorder does not);
	// there the body is already in memory.
	deadline := rc.SetReadDeadline(time.Now().Add(BodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, record.MaxBodyBytes))
	if err == nil && deadline {
		// Lift the deadline only after a complete body: after a failed one, the server
		// tries to drain what is left before answering, and must not wait for it.
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		w.Header().Set("Connection", "close")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &record.Error{Code: record.ETOOLARGE, Field: "body",
			Message: fmt.Sprintf("body is over %d bytes", record.MaxBodyBytes)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &record.Error{Code: record.ETIMEOUT, Field: "body",
			Message: fmt.Sprintf("body not received within %s", BodyTimeout), Err: err}
	case err != nil:
		return nil, record.Invalidf("body", "cannot read body: %v", err)
	}
	return body, nil
}
