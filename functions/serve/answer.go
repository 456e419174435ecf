package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// JSON writes v with status, as one line.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode answer","code":"internal"}`)
	}
	RawJSON(w, status, append(b, '\n'))
}

// RawJSON writes b, JSON already encoded (a document as stored, say), with status.
func RawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
