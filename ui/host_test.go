package ui

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// withHost sends a request to the UI at base with the Host header host (and Origin
// http://host, as a browser that reached the UI by that name would).
func withHost(t *testing.T, method, base, path, host, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://"+host)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestHostAllowList: a name that resolves to the UI but is not one it serves (DNS
// rebinding: the attacker's page, Host and Origin all rebind.evil.example) can
// neither write nor read through the UI; the health probes answer any Host.
func TestHostAllowList(t *testing.T) {
	fn, got := capture(t)
	ui := newUI(t, fn, fn, 5*time.Second)
	port := ui.Listener.Addr().(*net.TCPAddr).Port
	evil := "rebind.evil.example:" + strconv.Itoa(port)
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/records", `{"type":"bp","text":"x"}`},
		{http.MethodPost, "/add", `{"d_type":"bp","data":"x"}`},
		{http.MethodGet, "/api/records", ""},
		{http.MethodGet, "/", ""},
	} {
		resp, body := withHost(t, tt.method, ui.URL, tt.path, evil, tt.body)
		if e := errorBody(t, resp, body); resp.StatusCode != http.StatusForbidden || e.Code != fail.EFORBIDDEN {
			t.Errorf("%s %s with Host %s: got %d %s, want 403 forbidden", tt.method, tt.path, evil, resp.StatusCode, body)
		}
		none(t, got, "Host "+evil)
	}
	for _, path := range []string{"/health/readiness", "/health/liveness"} {
		if resp, body := withHost(t, http.MethodGet, ui.URL, path, evil, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with Host %s: got %d %s, want the probe's 200", path, evil, resp.StatusCode, body)
		}
	}
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]", "LOCALHOST"} {
		h := host + ":" + strconv.Itoa(port)
		if resp, body := withHost(t, http.MethodPost, ui.URL, "/api/records", h, `{"type":"bp","text":"x"}`); resp.StatusCode != http.StatusOK {
			t.Errorf("POST with Host %s: got %d %s, want it forwarded", h, resp.StatusCode, body)
		}
		next(t, got)
	}
}

func TestAllowedHosts(t *testing.T) {
	for _, tt := range []struct {
		allowed  []string
		kService string
		host     string
		want     bool
	}{
		{nil, "", "localhost:8080", true},
		{nil, "", "127.0.0.1", true},
		{nil, "", "[::1]:8080", true},
		{nil, "", "ui.example", false},
		{nil, "", "localhost.evil.example", false},
		{nil, "cqrs-ui", "cqrs-ui.default.example.com", true},
		{[]string{"ui.example"}, "cqrs-ui", "ui.example:443", true},
		{[]string{"ui.example"}, "cqrs-ui", "other.example", false},
		{[]string{"UI.example", "[fd00::1]"}, "", "[fd00::1]:80", true},
		{[]string{"*"}, "", "anything.example", true},
	} {
		cfg := DefaultConfig()
		cfg.AllowedHosts, cfg.KService = tt.allowed, tt.kService
		s := &UI{hosts: cfg.hosts()}
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.Host = tt.host
		if err := s.allowedHost(r); (err == nil) != tt.want {
			t.Errorf("UI_ALLOWED_HOSTS %q, K_SERVICE %q, Host %q: %v, want allowed %v", tt.allowed, tt.kService, tt.host, err, tt.want)
		}
	}
}

// TestLocationAtASegmentBoundary: only /records and /records/... name the records;
// a Location such as /recordsevil is the function's own and is not rewritten.
func TestLocationAtASegmentBoundary(t *testing.T) {
	for loc, want := range map[string]string{
		"/records":      "/api/records",
		"/records/1-ab": "/api/records/1-ab",
		"/recordsevil":  "/recordsevil",
		"/records-1":    "/records-1",
	} {
		write, got := backend(t, answer(http.StatusCreated, map[string]string{"Location": loc}, `{}`))
		ui := newUI(t, write.URL, closedURL(t), 5*time.Second)
		resp, _ := do(t, http.MethodPost, ui.URL+"/api/records", "application/json", `{}`, nil)
		next(t, got)
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("Location %q: got %q, want %q", loc, got, want)
		}
	}
}

// TestMetricsOffThePublicRoute: the UI's /metrics are not on its public route, only
// on METRICS_PORT when that is set.
func TestMetricsOffThePublicRoute(t *testing.T) {
	public, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	private, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := NewWithConfig(DefaultConfig())
	if err := u.Start(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	rc := serve.DefaultConfig()
	rc.MetricsPort = private.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: serve.Mux(u, rc)}
	go srv.Serve(public)
	go srv.Serve(private)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + public.Addr().String()
	do(t, http.MethodGet, base+"/", "", "", nil)
	resp, body := do(t, http.MethodGet, base+"/metrics", "", "", nil)
	if e := errorBody(t, resp, body); resp.StatusCode != http.StatusNotFound || e.Code != fail.ENOTFOUND {
		t.Errorf("GET /metrics on the public port: got %d %s, want a JSON 404", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, "http://"+private.Addr().String()+"/metrics", "", "", nil)
	if want := `ui_http_requests_total{code="200",method="get",route="page"} 1`; resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("GET /metrics on METRICS_PORT: got %d without %s", resp.StatusCode, want)
	}
}
