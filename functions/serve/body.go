package serve

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"
)

// MaxBodyBytes bounds any request body; larger bodies are refused with 413.
const MaxBodyBytes = 64 << 10

// BodyTimeout bounds how long a client may take to send a request body. The server
// has no overall read timeout, because that would also cut short handlers that wait
// on purpose (a read waiting for minSeq).
var BodyTimeout = 10 * time.Second

// ReadBody reads r's body, at most MaxBodyBytes (413 beyond) and within BodyTimeout
// (408 beyond), so a client that stalls cannot hold a request forever.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest's recorder does not);
	// there the body is already in memory.
	deadline := rc.SetReadDeadline(time.Now().Add(BodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
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
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Field: "body",
			Message: fmt.Sprintf("body is over %d bytes", MaxBodyBytes)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &Error{Status: http.StatusRequestTimeout, Code: CodeTimeout, Field: "body",
			Message: fmt.Sprintf("body not received within %s", BodyTimeout), Err: err}
	case err != nil:
		return nil, Invalid("body", fmt.Sprintf("cannot read body: %v", err))
	}
	return body, nil
}

// IsJSON reports whether a content type is JSON: application/json or a +json type.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// UnsupportedType is the 415 for a content type other than JSON in field (the header
// or attribute that carries it).
func UnsupportedType(field, contentType string) *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupported, Field: field,
		Message: fmt.Sprintf("content type %q is not supported; send application/json", contentType)}
}
