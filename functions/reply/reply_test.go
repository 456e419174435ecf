package reply

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

func TestError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
		wantHeader [2]string
	}{
		{"invalid names the field", record.Invalid("text", "text is required"), 400,
			`{"error":"text is required","field":"text","code":"invalid"}`, [2]string{}},
		{"wrapped still maps", fmt.Errorf("decode: %w", record.Invalid("limit", "bad")), 400,
			`{"error":"bad","field":"limit","code":"invalid"}`, [2]string{}},
		{"method sets Allow", serve.MethodNotAllowed("PUT", "POST"), 405,
			`{"error":"method PUT not allowed; use POST","code":"method_not_allowed"}`, [2]string{"Allow", "POST"}},
		{"unavailable sets Retry-After", record.Unavailable("redis is unavailable", errors.New("dial")), 503,
			`{"error":"redis is unavailable","code":"unavailable"}`, [2]string{"Retry-After", "1"}},
		{"internal hides the cause", errors.New("secret detail"), 500,
			`{"error":"internal error","code":"internal"}`, [2]string{}},
		{"not found", serve.NotFound("/x"), 404, `{"error":"no such path \"/x\"","code":"not_found"}`, [2]string{}},
		{"conflict", &record.Error{Code: record.ECONFLICT, Field: "Idempotency-Key", Message: "used"}, 422,
			`{"error":"used","field":"Idempotency-Key","code":"conflict"}`, [2]string{}},
		{"runtime refusal keeps its status", &serve.Error{Status: 408, Code: serve.CodeTimeout, Field: "body", Message: "slow"}, 408,
			`{"error":"slow","field":"body","code":"timeout"}`, [2]string{}},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Error(w, httptest.NewRequest(http.MethodGet, "/", nil), log, tt.err)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.wantBody {
				t.Errorf("body %s, want %s", got, tt.wantBody)
			}
			if tt.wantHeader[0] != "" && w.Header().Get(tt.wantHeader[0]) != tt.wantHeader[1] {
				t.Errorf("%s = %q, want %q", tt.wantHeader[0], w.Header().Get(tt.wantHeader[0]), tt.wantHeader[1])
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
}
