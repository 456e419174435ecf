package serve

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// statuses maps each error code to the HTTP status of its answer; a code missing
// here answers 500.
var statuses = map[string]int{
	fail.EINVALID:     http.StatusBadRequest,
	fail.EFORBIDDEN:   http.StatusForbidden,
	fail.ENOTFOUND:    http.StatusNotFound,
	fail.EMETHOD:      http.StatusMethodNotAllowed,
	fail.ETIMEOUT:     http.StatusRequestTimeout,
	fail.ETOOLARGE:    http.StatusRequestEntityTooLarge,
	fail.EUNSUPPORTED: http.StatusUnsupportedMediaType,
	fail.ECONFLICT:    http.StatusUnprocessableEntity,
	fail.EINTERNAL:    http.StatusInternalServerError,
	fail.EUNAVAILABLE: http.StatusServiceUnavailable,
	fail.EUNKNOWN:     http.StatusServiceUnavailable,
	fail.ERESET:       http.StatusGone,
	fail.EFULL:        http.StatusServiceUnavailable,
	fail.ELIMIT:       http.StatusInsufficientStorage,
	fail.EEVICTING:    http.StatusServiceUnavailable,
	fail.EOUTBOX:      http.StatusServiceUnavailable,
}

// Status is the HTTP status of an answer with code.
func Status(code string) int {
	return cmp.Or(statuses[code], http.StatusInternalServerError)
}

// RetryAfterSeconds is what 503 answers tell clients (and Knative's retries) to wait.
const RetryAfterSeconds = 1

// ErrorBody is the JSON shape of every error answer of every service.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Error answers err with its code's status and {"error","field","code"}: a 503 says
// when to retry, a 405 which methods the path takes. An error without a code is
// internal: its detail goes to the log, never to the client. Internal and
// unavailable errors are logged; the others are the client's and already explained
// in the answer.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := fail.Code(err)
	body := ErrorBody{Error: "internal error", Code: code}
	var e *fail.Error
	if errors.As(err, &e) && e.Message != "" {
		body.Error, body.Field = e.Message, e.Field
	}
	switch code {
	case fail.EINTERNAL:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case fail.EUNAVAILABLE, fail.EUNKNOWN:
		log.Warn("request failed", "code", code, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	status := Status(code)
	var allow allowed
	if errors.As(err, &allow) {
		w.Header().Set("Allow", string(allow))
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	JSON(w, status, body)
}

// allowed is the cause of a 405: the methods the path takes, for the Allow header.
type allowed string

func (a allowed) Error() string { return "allowed: " + string(a) }

// MethodNotAllowed is the error for a known path with the wrong method; allow lists
// the methods the path takes.
func MethodNotAllowed(method, allow string) *fail.Error {
	return &fail.Error{Code: fail.EMETHOD, Message: "method " + method + " not allowed; use " + allow, Err: allowed(allow)}
}

// NotFound is the error for an unknown path.
func NotFound(path string) *fail.Error {
	return fail.Errorf(fail.ENOTFOUND, "no such path %s", strconv.Quote(path))
}
