// Package ui is the CQRS sample's web front: an embedded static page with "Add
// records" and "Query records" panes, and a same-origin proxy to the write and read
// functions, so the page never talks to another origin. It keeps the original
// sample's POST /add and POST /search working.
package ui

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Service is the name the UI logs and reports under.
const Service = "cqrs-ui"

//go:embed static
var staticFiles embed.FS

// ContentSecurityPolicy is sent with every answer: the page loads scripts, styles
// and data from its own origin only, and runs no inline script.
const ContentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// UI is the UI service as an instanced function: the runtime (serve) starts it,
// serves Handle, answers the health probes and exports its metrics.
type UI struct {
	preset      *Config // instead of the environment (NewWithConfig)
	cfg         Config
	log         *slog.Logger
	writeURL    *url.URL
	readURL     *url.URL
	hosts       []string // allowedHost's
	crossOrigin *http.CrossOriginProtection
	transport   *http.Transport
	client      *http.Client
	mux         *http.ServeMux
	requests    *prometheus.CounterVec // by route, method and status
	upstream    *prometheus.CounterVec // requests to a function that got no answer
}

// New returns the UI; it reads its configuration from the environment in Start.
func New() *UI {
	return &UI{
		log: slog.Default(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ui_http_requests_total", Help: "HTTP requests handled, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ui_upstream_errors_total", Help: "Requests to a function that got no answer, by function and reason.",
		}, []string{"function", "reason"}),
	}
}

// Start checks the configuration and builds the proxies and routes.
func (s *UI) Start(context.Context, map[string]string) error {
	cfg, err := serve.Configure(s.preset, DefaultConfig())
	if err != nil {
		return err
	}
	s.cfg = cfg
	s.hosts = cfg.hosts()
	s.crossOrigin = http.NewCrossOriginProtection()
	s.log = slog.Default() // serve.Main's logger already names the service
	s.writeURL, _ = baseURL("WRITE_URL", cfg.WriteURL)
	s.readURL, _ = baseURL("READ_URL", cfg.ReadURL)
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
	s.client = &http.Client{Transport: s.transport, Timeout: cfg.ProxyTimeout + 5*time.Second,
		// A function's redirect is answered as an error, never followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	types := map[string][]Type{"types": cfg.Types()}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return err
	}
	write := s.proxy("write", s.writeURL)
	read := s.proxy("read", s.readURL)

	// Every path gets a JSON answer: the routes below, a 405 with Allow for a known
	// path with another method, and a 404 for everything else.
	m := http.NewServeMux()
	m.Handle("GET /{$}", s.route("page", s.fileHandler(static, "index.html")))
	m.Handle("GET /static/{name}", s.route("static", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveFile(w, r, static, r.PathValue("name"))
	})))
	m.Handle("GET /favicon.ico", s.route("static", s.fileHandler(static, "favicon.svg")))
	m.Handle("POST /add", s.logged(s.route("add", http.HandlerFunc(s.add))))
	m.Handle("POST /search", s.logged(s.route("search", http.HandlerFunc(s.search))))
	m.Handle("GET /api/types", s.route("api_types", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		serve.JSON(w, http.StatusOK, types)
	})))
	m.Handle("POST /api/records", s.logged(s.route("api_write", write)))
	m.Handle("GET /api/records", s.logged(s.route("api_read", read)))
	m.Handle("GET /api/records/{id}", s.logged(s.route("api_read", read)))
	for path, allow := range map[string]string{
		"/{$}": "GET, HEAD", "/static/{name}": "GET, HEAD", "/favicon.ico": "GET, HEAD", "/api/types": "GET, HEAD",
		"/api/records/{id}": "GET, HEAD", "/api/records": "GET, HEAD, POST", "/add": "POST", "/search": "POST",
	} {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			serve.Error(w, r, s.log, serve.MethodNotAllowed(r.Method, allow))
		})
	}
	m.Handle("/", s.route("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.Error(w, r, s.log, serve.NotFound(r.URL.Path))
	})))
	s.mux = m
	return nil
}

// fileHandler serves one embedded file.
func (s *UI) fileHandler(static fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveFile(w, r, static, name) })
}

// serveFile serves the embedded file name, or a JSON 404: there are no directory
// listings and no plain-text errors. Embedded files have no modification time, so
// none is sent.
func (s *UI) serveFile(w http.ResponseWriter, r *http.Request, static fs.FS, name string) {
	b, err := fs.ReadFile(static, name)
	if err != nil {
		serve.Error(w, r, s.log, serve.NotFound(r.URL.Path))
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// Stop closes the idle connections to the functions.
func (s *UI) Stop(context.Context) error {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return nil
}

// Collectors returns the UI's own metrics; the runtime adds its request metrics.
func (s *UI) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.requests, s.upstream}
}

// PrivateMetrics keeps the UI's /metrics (Go version, process and traffic figures)
// off its public route: the runtime serves them on METRICS_PORT only, when set.
func (s *UI) PrivateMetrics() {}

// SetHeaders sets the security headers that every answer carries.
func (s *UI) SetHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// Handle serves the page, the proxy and the original sample's endpoints. A Host the
// UI does not serve, and a path that another program could read as another path, are
// refused before any route, the Host first.
func (s *UI) Handle(w http.ResponseWriter, r *http.Request) {
	if err := cmp.Or(s.allowedHost(r), checkPath(r.URL.EscapedPath())); err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// route counts a route's requests under a fixed label, so paths with ids do not
// grow the metric's cardinality.
func (s *UI) route(name string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(prometheus.Labels{"route": name}), h)
}

// logged writes one JSON line per API request; static files and probes stay quiet.
func (s *UI) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &serve.StatusWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.Status(),
			"ms", float64(time.Since(start).Microseconds())/1000)
	})
}
