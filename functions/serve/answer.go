package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// RetryAfterSeconds is what 503 answers tell clients (and Knative's retries) to wait.
const RetryAfterSeconds = 1

// ErrorBody is the JSON shape of every error answer of every service.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  string `json:"code,omitempty"`
}

// JSON writes v with status, as one line.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode answer","code":"internal"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// WriteError answers with status and body; a 503 tells the client when to retry.
func WriteError(w http.ResponseWriter, status int, body ErrorBody) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	JSON(w, status, body)
}

// Refuse answers e.
func Refuse(w http.ResponseWriter, e *Error) {
	if e.Allow != "" {
		w.Header().Set("Allow", e.Allow)
	}
	WriteError(w, e.Status, ErrorBody{Error: e.Message, Field: e.Field, Code: e.Code})
}
