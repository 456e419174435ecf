// Package reply answers the functions' errors: the one mapping from the record
// package's error codes to HTTP status codes, beside the runtime's own refusals,
// so that both functions fail the same way.
package reply

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// Status maps an error code to its HTTP status.
func Status(code string) int {
	switch code {
	case record.EINVALID:
		return http.StatusBadRequest
	case record.ENOTFOUND:
		return http.StatusNotFound
	case record.ECONFLICT:
		return http.StatusUnprocessableEntity
	case record.EUNAVAILABLE, record.EUNKNOWN:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Code is the code an answer to err carries.
func Code(err error) string {
	var se *serve.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return record.ErrorCode(err)
}

// Error answers err. Only internal and unavailable errors are logged: the rest are
// the client's and already explained in the answer.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var se *serve.Error
	if errors.As(err, &se) {
		serve.Refuse(w, se)
		return
	}
	code := record.ErrorCode(err)
	body := serve.ErrorBody{Error: "internal error", Code: code}
	var e *record.Error
	if errors.As(err, &e) {
		body.Error, body.Field = e.Message, e.Field
	}
	switch code {
	case record.EINTERNAL:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case record.EUNAVAILABLE, record.EUNKNOWN:
		log.Warn("redis unavailable", "code", code, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	serve.WriteError(w, Status(code), body)
}
