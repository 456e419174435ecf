package testenv

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// EventRequest is a POST / request built from fuzzed parts: a structured-mode body,
// or a binary-mode one with the ce-* headers that are not empty.
func EventRequest(structured bool, contentType, specversion, id, source, typ string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		req.Header["Content-Type"] = []string{contentType}
	}
	if !structured {
		for k, v := range map[string]string{"Ce-Specversion": specversion, "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
	}
	return req
}

// WantClientRefusal fails the test unless err is nil or a refusal a client can fix
// (400, 413 or 415): never an internal error.
func WantClientRefusal(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	switch code := fail.Code(err); code {
	case fail.EINVALID, fail.EUNSUPPORTED, fail.ETOOLARGE:
	default:
		tb.Fatalf("refused with %v (code %q), want a client error", err, code)
	}
}
