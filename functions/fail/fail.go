// Package fail is the one error vocabulary of every service: an Error carries a code
// that a client can act on, the input at fault and a message safe to show. It knows
// no HTTP and no domain rule, so any package may import it; the runtime (serve) maps
// each code to an HTTP status in one table.
//
// A new code is a constant here and a row in serve's table; serve's tests fail until
// the row is there.
package fail

import (
	"errors"
	"fmt"
)

// Codes, as answers carry them.
const (
	EINVALID     = "invalid"                // bad input: fix it and send again
	ENOTFOUND    = "not_found"              // no such record or path
	ECONFLICT    = "conflict"               // an idempotency key or event id reused for other content
	EUNAVAILABLE = "unavailable"            // a dependency down or not caught up: retry later
	EUNKNOWN     = "outcome_unknown"        // a command sent whose answer was lost: retry with the same key
	EINTERNAL    = "internal"               // a bug, logged
	EFORBIDDEN   = "forbidden"              // refused for where it comes from
	EMETHOD      = "method_not_allowed"     // a method the path does not take
	ETIMEOUT     = "timeout"                // the request did not arrive in time
	ETOOLARGE    = "too_large"              // the request is over its size limit
	EUNSUPPORTED = "unsupported_media_type" // a content type other than the one accepted
	ERESET       = "store_reset"            // a token or cursor of a store history that is gone
	EFULL        = "store_full"             // the store's memory is full: retry later
	ELIMIT       = "store_limit"            // a part of the store at a size limit of its layout
	EEVICTING    = "eviction_policy"        // the store may evict what it must keep: writes refused
	EOUTBOX      = "outbox_full"            // too many events not yet published: retry later
)

// Error is an error a client is told about. Message is safe to show; Field names the
// input at fault, when there is one; Err is the cause, for logs only.
type Error struct {
	Code    string
	Field   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error with code and a formatted message, naming no field.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error for field.
func Invalid(field, msg string) *Error { return &Error{Code: EINVALID, Field: field, Message: msg} }

// Invalidf is Invalid with a formatted message.
func Invalidf(field, format string, args ...any) *Error {
	return Invalid(field, fmt.Sprintf(format, args...))
}

// Unavailable returns an EUNAVAILABLE error with a message safe to show and its cause.
func Unavailable(msg string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: msg, Err: err}
}

// Code returns the code of the first *Error in err's chain: "" for nil, EINTERNAL
// for an error that carries none.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
