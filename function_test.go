package function

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHandle is the test of knative/func's Go template, on a real Redis: New, Start
// with the environment as func's runtime passes it, then Handle through httptest.
func TestHandle(t *testing.T) {
	addr := redisServer(t)
	f := New()

	// Before Start has finished, func's runtime may already route requests here.
	w := httptest.NewRecorder()
	f.Handle(w, httptest.NewRequest(http.MethodPost, "/records", strings.NewReader(`{"type":"bp","text":"early"}`)))
	if got, want := w.Code, http.StatusServiceUnavailable; got != want {
		t.Errorf("before Start: status %d, want %d", got, want)
	}

	if err := f.Start(context.Background(), map[string]string{"REDIS_ADDR": addr}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })

	w = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/records", strings.NewReader(`{"type":"bp","text":"hello from the template test"}`))
	req.Header.Set("Content-Type", "application/json")
	f.Handle(w, req)
	res := w.Result()
	defer res.Body.Close()
	if got, want := res.StatusCode, http.StatusCreated; got != want {
		t.Fatalf("POST /records: status %d, want %d; body %s", got, want, w.Body)
	}
	if got := res.Header.Get("Location"); !strings.HasPrefix(got, "/records/") {
		t.Errorf("Location %q, want /records/{id}", got)
	}

	w = httptest.NewRecorder()
	f.Handle(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if got, want := w.Code, http.StatusOK; got != want || !strings.Contains(w.Body.String(), "cqrs_records_created_total") {
		t.Errorf("GET /metrics: status %d, want %d with cqrs_records_created_total", got, want)
	}
}

// redisServer starts a lone redis-server on a free loopback port until the test ends
// and returns its address, with REDIS_ADDR set to it (New reads the environment).
func redisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; run make test, which installs it")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Setenv("REDIS_ADDR", addr)
			return addr
		}
	}
	t.Fatalf("redis-server on %s did not come up", addr)
	return ""
}
