package serve

import (
	"net/http"
	"strconv"
)

// Error is a request the HTTP layer refuses before a function's own logic runs: an
// unknown path, a method the path does not take, a body too large, too slow, of
// another content type, or JSON that does not decode. It carries its status; Code
// names it in the answer so that clients can tell refusals apart without parsing
// the message.
type Error struct {
	Status  int
	Code    string
	Field   string // the input at fault, when there is one
	Message string // safe to show
	Allow   string // with 405: the methods the path takes
	Err     error  // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Codes of the runtime's errors, as answers carry them.
const (
	CodeInvalid     = "invalid"
	CodeForbidden   = "forbidden"
	CodeNotFound    = "not_found"
	CodeMethod      = "method_not_allowed"
	CodeTimeout     = "timeout"
	CodeTooLarge    = "too_large"
	CodeUnsupported = "unsupported_media_type"
)

// Invalid is a 400 for input that does not parse, naming field.
func Invalid(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Field: field, Message: msg}
}

// NotFound is the error for an unknown path.
func NotFound(path string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such path " + strconv.Quote(path)}
}

// MethodNotAllowed is the error for a known path with the wrong method; allow lists
// the methods the path takes, for the Allow header.
func MethodNotAllowed(method, allow string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethod, Allow: allow,
		Message: "method " + method + " not allowed; use " + allow}
}
