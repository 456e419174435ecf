package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

type private struct{ waiter }

func (private) PrivateMetrics() {}

// serveOn serves f under cfg on two fresh loopback listeners, the second one
// cfg.MetricsPort when metrics is true, and returns their base URLs.
func serveOn(t *testing.T, f Handler, metrics bool) (main, other string) {
	t.Helper()
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	cfg := DefaultConfig()
	if metrics {
		cfg.MetricsPort = lns[1].Addr().(*net.TCPAddr).Port
	}
	srv := &http.Server{Handler: Mux(f, cfg)}
	for _, ln := range lns {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + lns[0].Addr().String(), "http://" + lns[1].Addr().String()
}

// get returns the status of GET url and whether its body is the metrics page.
func get(t *testing.T, url string) (int, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.Contains(string(b), "# HELP go_goroutines")
}

func TestMetricsRoutes(t *testing.T) {
	tests := []struct {
		name          string
		f             Handler
		metricsPort   bool
		wantMain      bool // the metrics on the main port
		wantOther     bool // the metrics on the other port
		wantOtherPath int  // the status of GET /x on the other port
	}{
		{"public, on every port", waiter{}, false, true, true, 200},
		{"private: off", private{}, false, false, false, 200},
		{"METRICS_PORT: there alone", waiter{}, true, false, true, 404},
		{"private with METRICS_PORT: there alone", private{}, true, false, true, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main, other := serveOn(t, tt.f, tt.metricsPort)
			if _, got := get(t, main+"/metrics"); got != tt.wantMain {
				t.Errorf("main port /metrics: metrics %v, want %v", got, tt.wantMain)
			}
			if _, got := get(t, other+"/metrics"); got != tt.wantOther {
				t.Errorf("other port /metrics: metrics %v, want %v", got, tt.wantOther)
			}
			if got, _ := get(t, other+"/x"); got != tt.wantOtherPath {
				t.Errorf("other port /x: %d, want %d", got, tt.wantOtherPath)
			}
		})
	}
}

// unready fails its readiness with a cause that names an address.
type unready struct {
	waiter
	err error
}

func (u unready) Ready(context.Context) (bool, error) { return false, u.err }

func TestReadinessNamesNoAddress(t *testing.T) {
	cause := errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fail.Unavailable("redis is unavailable", cause), "not ready: redis is unavailable"},
		{cause, "not ready"},
	} {
		srv := httptest.NewServer(Mux(unready{err: tt.err}, DefaultConfig()))
		resp, err := http.Get(srv.URL + "/health/readiness")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(b)) != tt.want {
			t.Errorf("readiness failing with %v: %d %q, want 503 %q", tt.err, resp.StatusCode, b, tt.want)
		}
	}
}

func TestReadinessReport(t *testing.T) {
	var rd Readiness
	var logged strings.Builder
	log := slogTo(&logged)
	cause := fail.Unavailable("redis is unavailable", errors.New("dial tcp 10.1.2.3:6379: refused"))
	for range 3 {
		ok, err := rd.Report(log, cause)
		if ok || err == nil || err.Error() != "redis is unavailable" {
			t.Fatalf("Report(down) = %v, %v; want false and the short reason", ok, err)
		}
	}
	if ok, err := rd.Report(log, nil); !ok || err != nil {
		t.Fatalf("Report(nil) = %v, %v; want true", ok, err)
	}
	if got := strings.Count(logged.String(), "10.1.2.3"); got != 1 || !strings.Contains(logged.String(), "ready again") {
		t.Errorf("log %q: want the cause once, when readiness changed, and the recovery", logged.String())
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestRequestMetricsLabels: requests are counted and timed under their method's
// label, and a method outside the known set (a made-up one, a known one in lower
// case) under "other", so clients cannot grow the label set.
func TestRequestMetricsLabels(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{}, DefaultConfig()))
	defer srv.Close()
	for _, method := range []string{"GET", "GET", "POST", "FOO", "get", "DELETE"} {
		req, _ := http.NewRequest(method, srv.URL+"/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{
		`http_requests_total{code="200",method="get"} 2`,
		`http_requests_total{code="200",method="post"} 1`,
		`http_requests_total{code="200",method="delete"} 1`,
		`http_requests_total{code="200",method="other"} 2`,
		`http_request_duration_seconds_count{method="get"} 2`,
		`http_request_duration_seconds_count{method="other"} 2`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics: got no line %s", want)
		}
	}
	for _, unwanted := range []string{`method="foo"`, `method="FOO"`, `method="head"`, `method=""`} {
		if strings.Contains(page, unwanted) {
			t.Errorf("/metrics: got %s, want no such label", unwanted)
		}
	}
}
