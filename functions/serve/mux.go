package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Mux routes the health and metrics endpoints to the runtime and everything else to
// f, counting every request by method and status, under the request bounds of cfg.
// With METRICS_PORT set, /metrics is served on that port alone, and nothing else
// is; without it, on every port unless f's metrics are private.
func Mux(f Handler, cfg Config) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if m, ok := f.(MetricsReporter); ok {
		reg.MustRegister(m.Collectors()...)
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests handled, by method and status code.",
	}, []string{"method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "Time to answer an HTTP request, by method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method"})
	reg.MustRegister(requests, duration)

	mux := http.NewServeMux()
	mux.Handle("/health/readiness", probe(f, true))
	mux.Handle("/health/liveness", probe(f, false))
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if _, private := f.(PrivateMetrics); cfg.MetricsPort == 0 && !private {
		mux.Handle("/metrics", metrics)
	}
	mux.Handle("/", instrument(newRequestMetrics(requests, duration), f))
	hs, _ := f.(HeaderSetter)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hs != nil {
			hs.SetHeaders(w.Header())
		}
		if cfg.MetricsPort > 0 && localPort(r) == cfg.MetricsPort {
			if r.URL.Path != "/metrics" {
				Error(w, r, slog.Default(), NotFound(r.URL.Path))
				return
			}
			metrics.ServeHTTP(w, r)
			return
		}
		if !cleanPath(r.URL.Path) {
			// Go's ServeMux would answer with a redirect to the cleaned path, in HTML.
			Error(w, r, slog.Default(), fail.Invalid("path", "the path holds an empty, . or .. segment; send it without"))
			return
		}
		if boundBody(w, r, cfg.BodyTimeout) {
			mux.ServeHTTP(w, r)
		}
	})
}

// instrument counts and times each request. It wraps the ResponseWriter in a type
// that unwraps, so handlers can still use http.ResponseController (read deadlines).
func instrument(m requestMetrics, f Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := StatusWriter{ResponseWriter: w}
		f.Handle(&sw, r)
		mm, known := m[r.Method]
		if !known {
			mm = m[""]
		}
		mm.count(sw.Status()).Inc()
		mm.duration().Observe(time.Since(start).Seconds())
	})
}

// requestMetrics are the request counter and duration histogram with their children
// kept once resolved, by method and status: resolving labels hashes them and takes
// the vector's lock, on every request. Children are still made on first use, so
// /metrics shows only the methods and codes that came. The map holds the known
// methods, and under "" the label "other" for any method a client sends, so the
// label keeps to a known set.
type requestMetrics map[string]*methodMetrics

type methodMetrics struct {
	label    string
	requests *prometheus.CounterVec
	codes    sync.Map // status code (int) -> prometheus.Counter
	duration func() prometheus.Observer
}

func newRequestMetrics(requests *prometheus.CounterVec, durations *prometheus.HistogramVec) requestMetrics {
	m := requestMetrics{}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut,
		http.MethodDelete, http.MethodPatch, http.MethodOptions, ""} {
		label := cmp.Or(strings.ToLower(method), "other")
		m[method] = &methodMetrics{label: label, requests: requests, duration: sync.OnceValue(func() prometheus.Observer {
			return durations.WithLabelValues(label)
		})}
	}
	return m
}

// count is the counter of this method's requests answered with code.
func (mm *methodMetrics) count(code int) prometheus.Counter {
	if c, ok := mm.codes.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c := mm.requests.WithLabelValues(mm.label, strconv.Itoa(code))
	mm.codes.Store(code, c)
	return c
}

// StatusWriter remembers the status a handler answered with, for metrics and logs.
// It unwraps, so handlers can still use http.ResponseController (read deadlines).
type StatusWriter struct {
	http.ResponseWriter
	status int
}

// Status is the status written so far (200 once a body was written without one).
func (s *StatusWriter) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (s *StatusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// localPort is the port the request came in on, 0 when unknown.
func localPort(r *http.Request) int {
	a, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if a == nil {
		return 0
	}
	return a.Port
}

// probe answers a health probe. The reason of a failed one is the message of its
// fail.Error (such as "redis is unavailable"), never its cause: probes may be public,
// and a cause can name addresses.
func probe(f Handler, readiness bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := true, error(nil)
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if rr, has := f.(ReadinessReporter); readiness && has {
			ok, err = rr.Ready(ctx)
		}
		if lr, has := f.(LivenessReporter); !readiness && has {
			ok, err = lr.Alive(ctx)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok || err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			var e *fail.Error
			if errors.As(err, &e) {
				fmt.Fprintln(w, "not ready:", e.Message)
			} else {
				fmt.Fprintln(w, "not ready")
			}
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// cleanPath reports whether p has no empty, "." or ".." segment (a trailing slash
// is fine): path.Clean would change nothing but that slash. It runs on every request;
// path.Clean allocates only for a path it changes.
func cleanPath(p string) bool {
	return p == "" || p == "/" || p[0] == '/' && path.Clean(p) == strings.TrimSuffix(p, "/")
}
