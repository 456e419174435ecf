package serve

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

func TestError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   string
		wantHeader [2]string
	}{
		{"invalid names the field", fail.Invalid("text", "text is required"), 400,
			`{"error":"text is required","field":"text","code":"invalid"}`, [2]string{}},
		{"wrapped still maps", fmt.Errorf("decode: %w", fail.Invalid("limit", "bad")), 400,
			`{"error":"bad","field":"limit","code":"invalid"}`, [2]string{}},
		{"method sets Allow", MethodNotAllowed("PUT", "POST"), 405,
			`{"error":"method PUT not allowed; use POST","code":"method_not_allowed"}`, [2]string{"Allow", "POST"}},
		{"unavailable sets Retry-After", fail.Unavailable("redis is unavailable", errors.New("dial")), 503,
			`{"error":"redis is unavailable","code":"unavailable"}`, [2]string{"Retry-After", "1"}},
		{"outcome unknown sets Retry-After", &fail.Error{Code: fail.EUNKNOWN, Message: "outcome unknown"}, 503,
			`{"error":"outcome unknown","code":"outcome_unknown"}`, [2]string{"Retry-After", "1"}},
		{"internal hides the cause", errors.New("secret detail"), 500,
			`{"error":"internal error","code":"internal"}`, [2]string{}},
		{"not found", NotFound("/x"), 404, `{"error":"no such path \"/x\"","code":"not_found"}`, [2]string{}},
		{"conflict", &fail.Error{Code: fail.ECONFLICT, Field: "Idempotency-Key", Message: "used"}, 422,
			`{"error":"used","field":"Idempotency-Key","code":"conflict"}`, [2]string{}},
		{"timeout", &fail.Error{Code: fail.ETIMEOUT, Field: "body", Message: "slow"}, 408,
			`{"error":"slow","field":"body","code":"timeout"}`, [2]string{}},
		{"too large", &fail.Error{Code: fail.ETOOLARGE, Field: "body", Message: "big"}, 413,
			`{"error":"big","field":"body","code":"too_large"}`, [2]string{}},
		{"unsupported", UnsupportedType("Content-Type", "text/plain"), 415,
			`{"error":"content type \"text/plain\" is not supported; send application/json","field":"Content-Type","code":"unsupported_media_type"}`, [2]string{}},
		{"forbidden", fail.Errorf(fail.EFORBIDDEN, "no"), 403, `{"error":"no","code":"forbidden"}`, [2]string{}},
		{"a code without a status is internal", fail.Errorf("no_such_code", "odd"), 500,
			`{"error":"odd","code":"no_such_code"}`, [2]string{}},
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
			for _, h := range []string{"Allow", "Retry-After"} {
				if tt.wantHeader[0] != h && w.Header().Get(h) != "" {
					t.Errorf("%s = %q, want none", h, w.Header().Get(h))
				}
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
}

// TestEveryCodeHasAStatus reads package fail's code constants from its source, so
// that a code added there without a row in statuses fails here, not as a 500 in use.
func TestEveryCodeHasAStatus(t *testing.T) {
	files, err := parser.ParseDir(token.NewFileSet(), "../fail", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, pkg := range files {
		for name, f := range pkg.Files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			ast.Inspect(f, func(node ast.Node) bool {
				vs, ok := node.(*ast.ValueSpec)
				if !ok || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "E") {
					return true
				}
				lit, ok := vs.Values[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				code, _ := strconv.Unquote(lit.Value)
				n++
				if _, ok := statuses[code]; !ok {
					t.Errorf("fail.%s = %q has no status in serve's table", vs.Names[0].Name, code)
				}
				return true
			})
		}
	}
	if n < 11 {
		t.Errorf("found %d codes in package fail, want at least 11: the test no longer reads them", n)
	}
}
