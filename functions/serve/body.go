package serve

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// MaxBodyBytes bounds any request body; larger bodies are refused with 413.
const MaxBodyBytes = 64 << 10

// boundBody gives a request that has a body timeout to deliver all of it, whether or
// not the handler reads it: the server reads what is left of an unread body before it
// answers or reuses the connection, and stops at the deadline. Once a body has ended,
// net/http lifts the deadline itself (its background read for a closed connection
// starts then), so a handler that waits afterwards is not cut short. Requests without
// a body get no deadline at all. The server has no overall read timeout, because that
// would also cut short handlers that wait on purpose (a read waiting for minSeq).
//
// A body declared larger than MaxBodyBytes is refused at once, before a byte of it
// is read: waiting for more than the limit only to refuse it would hold the
// connection until BODY_TIMEOUT. It reports whether the request may go on.
func boundBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) bool {
	if r.ContentLength > MaxBodyBytes {
		w.Header().Set("Connection", "close")
		Error(w, r, slog.Default(), tooLarge())
		return false
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true
	}
	// Not every ResponseWriter supports deadlines (httptest's recorder does not);
	// there the body is already in memory.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	r.Body = deadlineBody{r.Body, timeout}
	return true
}

// deadlineBody is a request body under boundBody's deadline; a read that runs into it
// fails with the 408 that names the timeout.
type deadlineBody struct {
	io.ReadCloser
	timeout time.Duration
}

func (b deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = &fail.Error{Code: fail.ETIMEOUT, Field: "body", Err: err,
			Message: fmt.Sprintf("body not received within %s (BODY_TIMEOUT)", b.timeout)}
	}
	return n, err
}

// ReadBody reads r's body, at most MaxBodyBytes (413 beyond) and within the runtime's
// BODY_TIMEOUT (408 beyond; see boundBody), so a client that stalls cannot hold a
// request forever.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		w.Header().Set("Connection", "close")
	}
	var tooBig *http.MaxBytesError
	var timeout *fail.Error
	switch {
	case errors.As(err, &tooBig):
		return nil, tooLarge()
	case errors.As(err, &timeout):
		return nil, timeout
	case err != nil:
		return nil, fail.Invalidf("body", "cannot read body: %v", err)
	}
	return body, nil
}

func tooLarge() error {
	return &fail.Error{Code: fail.ETOOLARGE, Field: "body", Message: fmt.Sprintf("body is over %d bytes", MaxBodyBytes)}
}

// IsJSON reports whether a content type is JSON: application/json or a +json type.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// UnsupportedType is the 415 for a content type other than JSON in field (the header
// or attribute that carries it).
func UnsupportedType(field, contentType string) *fail.Error {
	return &fail.Error{Code: fail.EUNSUPPORTED, Field: field,
		Message: fmt.Sprintf("content type %q is not supported; send application/json", contentType)}
}
