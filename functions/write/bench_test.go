package write_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// BenchmarkHandle measures one POST /records on a real master: decoding, validation,
// the create script and the JSON answer. The function logs each create as it does in
// production, into a discarding writer so the formatting cost stays in the numbers.
// evalsha/op comes from the master's INFO commandstats and must be 1.
func BenchmarkHandle(b *testing.B) {
	testenv.QuietLogs(b)
	pair := testenv.Redis(b)
	cfg := write.DefaultConfig()
	cfg.RedisAddr = pair.Master.Addr()
	f := write.NewWithConfig(cfg)
	if err := f.Start(context.Background(), nil); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.Cleanup(func() { f.Stop(context.Background()) })
	const body = `{"type":"bp","text":"Redis replicas serve the query side of this sample"}`

	for _, tc := range []struct {
		name     string
		h        http.Handler
		parallel bool
	}{
		{"Handle", http.HandlerFunc(f.Handle), false},
		{"Mux", serve.Mux(f, serve.DefaultConfig()), false},
		{"Mux/parallel32", serve.Mux(f, serve.DefaultConfig()), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			testenv.BenchRequests(b, pair.Master, "evalsha", tc.parallel, func() bool {
				req := httptest.NewRequest(http.MethodPost, "/records", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Errorf("POST /records = %d %s, want 201", rec.Code, rec.Body)
					return false
				}
				return true
			})
		})
	}
}
