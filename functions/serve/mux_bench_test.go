package serve

import (
	"net/http"
	"net/http/httptest"
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
