// Package reply writes the functions' JSON answers and maps record errors to HTTP
// status codes in one place, so both functions fail the same way.
package reply

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// RetryAfterSeconds is what 503 answers tell clients (and Knative's retries) to wait.
const RetryAfterSeconds = 1

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"cannot encode answer"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Status maps an error code to its HTTP status.
func Status(code string) int {
	switch code {
	case record.EINVALID:
		return http.StatusBadRequest
	case record.ENOTFOUND:
		return http.StatusNotFound
	case record.EMETHOD:
		return http.StatusMethodNotAllowed
	case record.ETIMEOUT:
		return http.StatusRequestTimeout
	case record.ECONFLICT:
		return http.StatusUnprocessableEntity
	case record.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case record.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case record.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Body is the JSON shape of every error answer.
type Body struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Error answers err. Only internal and unavailable errors are logged: the rest are
// the client's and already explained in the answer.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := record.ErrorCode(err)
	status := Status(code)
	body := Body{Error: "internal error"}
	var e *record.Error
	if errors.As(err, &e) {
		body = Body{Error: e.Message, Field: e.Field}
	}
	switch code {
	case record.EINTERNAL:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case record.EUNAVAILABLE:
		log.Warn("redis unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	case record.EMETHOD:
		var me *methodError
		if errors.As(err, &me) {
			w.Header().Set("Allow", me.allow)
		}
	}
	JSON(w, status, body)
}

// MethodNotAllowed is the error for a known path with the wrong method; allow lists
// the methods the path takes, for the Allow header.
func MethodNotAllowed(method, allow string) error {
	return &methodError{
		err:   &record.Error{Code: record.EMETHOD, Message: "method " + method + " not allowed; use " + allow},
		allow: allow,
	}
}

// methodError carries the Allow header's value beside the record error.
type methodError struct {
	err   *record.Error
	allow string
}

func (e *methodError) Error() string { return e.err.Error() }

func (e *methodError) Unwrap() error { return e.err }

// NotFound is the error for an unknown path.
func NotFound(path string) error {
	return &record.Error{Code: record.ENOTFOUND, Message: "no such path " + strconv.Quote(path)}
}
