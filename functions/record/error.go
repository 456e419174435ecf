package record

import (
	"errors"
	"fmt"
)

// Error codes; the functions map each to one HTTP status. Refusals that belong to
// HTTP alone (method, body size and time, content type) are the runtime's.
const (
	EINVALID     = "invalid"         // bad input
	ENOTFOUND    = "not_found"       // no such record
	ECONFLICT    = "conflict"        // an idempotency key or event id reused for other content
	EUNAVAILABLE = "unavailable"     // Redis unreachable or not caught up: retry later
	EUNKNOWN     = "outcome_unknown" // a command sent whose answer was lost: retry with the same key
	EINTERNAL    = "internal"        // a bug, logged
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
