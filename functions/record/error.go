package record

import (
	"errors"
	"fmt"
)

// Error codes; each maps to one HTTP status in the functions.
const (
	EINVALID     = "invalid"     // bad input: 400
	ENOTFOUND    = "not_found"   // 404
	ETOOLARGE    = "too_large"   // body over the limit: 413
	EUNSUPPORTED = "unsupported" // wrong content type: 415
	EMETHOD      = "method"      // method not allowed: 405
	ETIMEOUT     = "timeout"     // the client was too slow sending the request: 408
	ECONFLICT    = "conflict"    // an idempotency key or event id reused for other content: 422
	EUNAVAILABLE = "unavailable" // Redis unreachable or not caught up: 503, retry later
	EINTERNAL    = "internal"    // a bug: 500, logged
)

// Error is the one error type the functions return to clients. Message is safe to
// show; Field names the input at fault, when there is one.
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Invalid returns an EINVALID error for field.
func Invalid(field, msg string) *Error { return &Error{Code: EINVALID, Field: field, Message: msg} }

// Invalidf is Invalid with formatting.
func Invalidf(field, format string, args ...any) *Error {
	return Invalid(field, fmt.Sprintf(format, args...))
}

// Unavailable wraps err as an EUNAVAILABLE error with a client-safe message.
func Unavailable(msg string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: msg, Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors not of this package.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
