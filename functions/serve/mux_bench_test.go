package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"
)

// created is a function that answers every request 201, with nothing else to do.
type created struct{}

func (created) Handle(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }

// discard is a ResponseWriter that keeps nothing but its header map.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// BenchmarkMux measures what the runtime adds to every request of a function: the
// path check, the request counter and duration histogram, the routing.
func BenchmarkMux(b *testing.B) {
	h := Mux(created{}, DefaultConfig())
	req := httptest.NewRequest(http.MethodPost, "/records", nil)
	w := discard{h: http.Header{}}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// reportCPU reports the process' CPU time (user + system, GC included) per op as
// cpu-ns/op when the returned func runs: on a machine shared with other work, time
// spent waiting for a core is not in it, as it is in ns/op.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() { b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op") }
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogLine measures one create's log line as the functions write it, into a
// file, from 32 goroutines: each line written at once (one write(2) per line) and
// lines gathered by lineBatcher (one write(2) per batch).
func BenchmarkLogLine(b *testing.B) {
	for _, tc := range []struct {
		name  string
		wrap  func(f *os.File) io.Writer
		flush func(w io.Writer)
	}{
		{"each", func(f *os.File) io.Writer { return f }, func(io.Writer) {}},
		{"batched", func(f *os.File) io.Writer { return newLineBatcher(f, logInterval) }, func(w io.Writer) { w.(*lineBatcher).Flush() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.CreateTemp(b.TempDir(), "log")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := tc.wrap(f)
			log := Logger("cqrs-write", w).With("function", "write")
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(16)
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.LogAttrs(ctx, slog.LevelInfo, "record created", slog.String("id", "123456-abcdefgh"),
						slog.Int64("seq", 123456), slog.String("type", "bp"), slog.Int("bytes", 150))
				}
			})
			tc.flush(w)
			st, _ := f.Stat()
			if want := int64(b.N) * 100; st.Size() < want {
				b.Fatalf("the file holds %d bytes after %d lines, want at least %d", st.Size(), b.N, want)
			}
		})
	}
}
