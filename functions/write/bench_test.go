package write_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
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

// BenchmarkRelay measures the outbox's relay publishing b.N entries, stored
// beforehand, to a sink that answers 202: from Start (the relay drains on start)
// until the outbox is empty. The sink runs in this process, so cpu-ns/op holds its
// share too; with -cpuprofile, pprof -focus 'relay|persistConn' shows the relay's.
func BenchmarkRelay(b *testing.B) {
	testenv.QuietLogs(b)
	m := testenv.Master(b)
	rdb := store.NewClient(store.Options{Addr: m.Addr()})
	b.Cleanup(func() { rdb.Close() })
	st := store.New(rdb).WithOutbox(b.N + 1)
	ctx := context.Background()
	for i := range b.N {
		text := fmt.Sprintf("entry %d of the relay's benchmark", i)
		if _, err := st.Create(ctx, store.NewRecord{Tag: fmt.Sprintf("r%d", i), Type: "bp", Text: text}, 0, 0); err != nil {
			b.Fatalf("create: %v", err)
		}
	}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(sink.Close)
	cfg := write.DefaultConfig()
	cfg.RedisAddr = m.Addr()
	cfg.Sink = sink.URL + "/"
	f := write.NewWithConfig(cfg)
	b.ResetTimer()
	cpu := testenv.ProcessCPU()
	if err := f.Start(ctx, nil); err != nil {
		b.Fatalf("Start: %v", err)
	}
	b.Cleanup(func() { f.Stop(context.Background()) })
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := st.Outbox(ctx)
		if err == nil && s.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("outbox not drained within a minute: %+v, %v", s, err)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(testenv.ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
}
