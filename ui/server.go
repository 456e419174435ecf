// Package ui is the CQRS sample's web front: an embedded static page with "Add
// records" and "Query records" panes, and a same-origin proxy to the write and read
// functions, so the page never talks to another origin. It keeps the original
// sample's POST /add and POST /search working.
package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var staticFiles embed.FS

// ContentSecurityPolicy is sent with every answer: the page loads scripts, styles
// and data from its own origin only, and runs no inline script.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// Server is the UI service's HTTP handler.
type Server struct {
	cfg       Config
	log       *slog.Logger
	writeURL  *url.URL
	readURL   *url.URL
	transport *http.Transport
	client    *http.Client
	mux       *http.ServeMux
	metrics   metrics
}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	upstream *prometheus.CounterVec
}

// New checks cfg and returns the handler.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	w, _ := baseURL("WRITE_URL", cfg.WriteURL)
	r, _ := baseURL("READ_URL", cfg.ReadURL)
	s := &Server{cfg: cfg, log: log, writeURL: w, readURL: r}
	// Short dial and header timeouts: a function that is down must turn into a JSON
	// error quickly instead of a page that spins.
	s.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.ProxyTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32,
	}
	s.client = &http.Client{Transport: s.transport, Timeout: cfg.ProxyTimeout + 5*time.Second}

	s.metrics.reg = prometheus.NewRegistry()
	s.metrics.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ui_http_requests_total", Help: "HTTP requests handled, by route, method and status code.",
	}, []string{"route", "method", "code"})
	s.metrics.upstream = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ui_upstream_errors_total", Help: "Requests to a function that got no answer, by function and reason.",
	}, []string{"function", "reason"})
	s.metrics.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.metrics.requests, s.metrics.upstream)

	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	write := s.proxy("write", s.writeURL)
	read := s.proxy("read", s.readURL)

	m := http.NewServeMux()
	m.Handle("GET /{$}", s.route("page", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "index.html")
	})))
	m.Handle("GET /static/", s.route("static", http.StripPrefix("/static", files)))
	m.Handle("GET /favicon.ico", s.route("static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})))
	m.Handle("POST /api/records", s.logged(s.route("api_write", write)))
	m.Handle("GET /api/records", s.logged(s.route("api_read", read)))
	m.Handle("GET /api/records/{id}", s.logged(s.route("api_read", read)))
	m.Handle("/api/", s.route("api_other", http.HandlerFunc(apiFallback)))
	m.Handle("POST /add", s.logged(s.route("add", http.HandlerFunc(s.add))))
	m.Handle("POST /search", s.logged(s.route("search", http.HandlerFunc(s.search))))
	m.Handle("GET /health/readiness", s.route("health", http.HandlerFunc(healthy)))
	m.Handle("GET /health/liveness", s.route("health", http.HandlerFunc(healthy)))
	m.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	s.mux = m
	return s, nil
}

// ServeHTTP serves every route with the security headers set.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

// route counts a route's requests under a fixed label, so paths with ids do not
// grow the metric's cardinality.
func (s *Server) route(name string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(s.metrics.requests.MustCurryWith(prometheus.Labels{"route": name}), h)
}

// logged writes one JSON line per API request; static files and probes stay quiet.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"ms", float64(time.Since(start).Microseconds())/1000)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushes of the
// reverse proxy).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// The UI holds no state: once it serves, it is ready. It does not probe the
// functions, because on Knative that would wake them from zero for nothing.
func healthy(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

func apiFallback(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/records":
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET or POST", "")
	case strings.HasPrefix(r.URL.Path, "/api/records/") && strings.Count(r.URL.Path, "/") == 3 && r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET", "")
	default:
		writeError(w, http.StatusNotFound, "no such path "+strconv.Quote(r.URL.Path), "")
	}
}

// errorBody is the JSON shape of every error answer, the same as the functions'.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode answer"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, errorBody{Error: msg, Field: field})
}
