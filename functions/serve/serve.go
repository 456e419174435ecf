// Package serve runs an instanced Knative Go function the way knative/func's Go
// runtime does: it calls Start with the environment, serves Handle on PORT (or
// LISTEN_ADDRESS), answers the health endpoints from Ready and Alive, exports
// Prometheus metrics, and on SIGTERM or SIGINT stops taking new requests, lets
// in-flight ones finish and then calls Stop.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler is the one method every function has.
type Handler interface {
	Handle(w http.ResponseWriter, r *http.Request)
}

// Starter is called once before the first request with the process environment.
type Starter interface {
	Start(ctx context.Context, cfg map[string]string) error
}

// Stopper is called once after the last request has finished.
type Stopper interface {
	Stop(ctx context.Context) error
}

// ReadinessReporter answers /health/readiness.
type ReadinessReporter interface {
	Ready(ctx context.Context) (bool, error)
}

// LivenessReporter answers /health/liveness.
type LivenessReporter interface {
	Alive(ctx context.Context) (bool, error)
}

// MetricsReporter lets a function add its own collectors to /metrics.
type MetricsReporter interface {
	Collectors() []prometheus.Collector
}

// Config is the runtime's part of the environment.
type Config struct {
	// Port is the port Knative asks the container to listen on.
	Port int `envconfig:"PORT" default:"8080"`
	// ListenAddress, when set, wins over Port (knative/func's variable).
	ListenAddress string `envconfig:"LISTEN_ADDRESS"`
	// DrainTimeout bounds how long in-flight requests may run after SIGTERM.
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT" default:"30s"`
}

// Addr is the address to listen on.
func (c Config) Addr() string {
	if c.ListenAddress != "" {
		return c.ListenAddress
	}
	return ":" + strconv.Itoa(c.Port)
}

// LoadConfig reads the runtime's variables; the error names the variable at fault.
func LoadConfig() (Config, error) {
	var c Config
	if err := Process(&c); err != nil {
		return c, err
	}
	if c.Port < 1 || c.Port > 65535 {
		return c, fmt.Errorf("PORT=%d: must be between 1 and 65535", c.Port)
	}
	if c.DrainTimeout <= 0 {
		return c, fmt.Errorf("DRAIN_TIMEOUT=%s: must be positive", c.DrainTimeout)
	}
	return c, nil
}

// Process fills spec from the environment with envconfig and rewrites its errors
// into one short line that starts with the variable's name.
func Process(spec any) error {
	err := envconfig.Process("", spec)
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s=%q: not a valid %s", pe.KeyName, pe.Value, pe.TypeName)
	}
	return err
}

// Checker is a configuration that can tell whether its values can work.
type Checker interface {
	Check() error
}

// Configure returns preset after checking it or, when preset is nil, the
// configuration the environment gives, checked. Errors start with the variable.
func Configure[C Checker](preset *C) (*C, error) {
	if preset == nil {
		var c C
		if err := Process(&c); err != nil {
			return nil, err
		}
		preset = &c
	}
	if err := (*preset).Check(); err != nil {
		return nil, err
	}
	return preset, nil
}

// Logger returns the JSON logger every process of this project writes with.
func Logger(service string) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})).With("service", service)
}

// Main runs f as the whole process: it returns the exit code. A configuration error
// prints one line to stderr and returns 2 before anything listens.
func Main(service string, f Handler) int {
	log := Logger(service)
	slog.SetDefault(log)
	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", service, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if s, ok := f.(Starter); ok {
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.Start(startCtx, environ())
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", service, err)
			return 2
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: listen: %v\n", service, err)
		return 1
	}
	log.Info("listening", "addr", ln.Addr().String())
	if err := Serve(ctx, f, ln, cfg.DrainTimeout, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Serve serves f on ln until ctx ends, then drains for at most drain and calls f's
// Stop. The function must already be started.
func Serve(ctx context.Context, f Handler, ln net.Listener, drain time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           Mux(f),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("draining", "timeout", drain.String())
	case serveErr = <-errc:
	}
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("drain: %w", err))
	}
	if s, ok := f.(Stopper); ok {
		if err := s.Stop(dctx); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("stop: %w", err))
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Mux routes the health and metrics endpoints to the runtime and everything else to
// f, counting every request by method and status.
func Mux(f Handler) http.Handler {
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
	mux.HandleFunc("/health/readiness", func(w http.ResponseWriter, r *http.Request) {
		probe(w, r, f, true)
	})
	mux.HandleFunc("/health/liveness", func(w http.ResponseWriter, r *http.Request) {
		probe(w, r, f, false)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", instrument(requests, duration, f))
	return mux
}

// instrument counts and times each request. It wraps the ResponseWriter in a type
// that unwraps, so handlers can still use http.ResponseController (read deadlines).
func instrument(requests *prometheus.CounterVec, duration *prometheus.HistogramVec, f Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		f.Handle(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m := methodLabel(r.Method)
		requests.WithLabelValues(m, strconv.Itoa(sw.status)).Inc()
		duration.WithLabelValues(m).Observe(time.Since(start).Seconds())
	})
}

// methodLabel keeps the method label to a known set, whatever clients send.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions:
		return strings.ToLower(m)
	}
	return "other"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func probe(w http.ResponseWriter, r *http.Request, f Handler, readiness bool) {
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
		if err != nil {
			fmt.Fprintln(w, "not ready:", err)
		} else {
			fmt.Fprintln(w, "not ready")
		}
		return
	}
	fmt.Fprintln(w, "ok")
}
