package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

func do(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	var h http.Header
	if body != "" {
		h = testenv.Header("Content-Type", "application/json")
	}
	resp, b := testenv.Do(t, method, url, h, body)
	return resp, string(b)
}

func TestBinariesConfigErrors(t *testing.T) {
	tests := []struct {
		pkg, key, val string
	}{
		{"./functions/cmd/cqrs-write", "WRITE_REPLICAS", "two"},
		{"./functions/cmd/cqrs-write", "WRITE_WAIT_TIMEOUT", "-1s"},
		{"./functions/cmd/cqrs-read", "READ_FALLBACK", "primary"},
		{"./functions/cmd/cqrs-read", "READ_MAX_WAIT", "forever"},
		{"./functions/cmd/cqrs-read", "PORT", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			bin := testenv.Build(t, tt.pkg)
			// Start sets PORT too; for duplicates the later value wins.
			p := testenv.Start(t, bin, tt.key+"="+tt.val)
			code := p.Wait(5 * time.Second)
			if code <= 0 {
				t.Fatalf("exit code %d, want a failure at start", code)
			}
			out := strings.TrimSpace(p.Output())
			t.Logf("%s=%s: %s", tt.key, tt.val, out)
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, tt.key) {
				t.Errorf("output %q, want one line naming %s", out, tt.key)
			}
		})
	}
}

func TestBinaries(t *testing.T) {
	b := testenv.StartBackend(t)
	w := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-write"), b.WriteEnv()...)
	r := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-read"),
		append(b.ReadEnv(), "READ_MAX_WAIT=10s", "READ_FALLBACK=none")...)
	testenv.Ready(t, w, 10*time.Second)
	testenv.Ready(t, r, 10*time.Second)

	resp, body := do(t, http.MethodPost, w.URL()+"/records", `{"type":"cmt","text":"from a binary"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var rec struct {
		record.Record
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(body), &rec)
	resp, body = do(t, http.MethodPost, w.URL()+"/records", `{"type":"cmt","text":""}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"text"`) {
		t.Errorf("blank text: %d %s, want 400 naming text", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, r.URL()+"/records?token="+url.QueryEscape(rec.Token), "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, rec.ID) || resp.Header.Get("X-Served-By") != "replica" {
		t.Fatalf("read: %d %s (X-Served-By %q), want the record from the replica", resp.StatusCode, body, resp.Header.Get("X-Served-By"))
	}
	if _, body = do(t, http.MethodGet, w.URL()+"/metrics", ""); !strings.Contains(body, `cqrs_records_created_total{type="cmt"} 1`) {
		t.Errorf("write /metrics lacks the create")
	}
	testenv.WaitOutput(t, w, `"msg":"record created"`, 10*time.Second)
	if !strings.Contains(w.Output(), rec.ID) {
		t.Errorf("write logs lack a JSON line for the create of %s:\n%s", rec.ID, w.Output())
	}

	// What follows needs the one master: a seq a read can wait for, the master's
	// restart in place. On a Redis Cluster the drain is shown by the event suite and a
	// master's failure by functions/store's cluster tests.
	if b.Pair == nil {
		testenv.CheckLog(t, "cqrs-write", w.Output())
		testenv.CheckLog(t, "cqrs-read", r.Output())
		return
	}
	pair := b.Pair

	// A read waiting for a seq that does not exist yet is in flight when SIGTERM
	// arrives; it must still get its answer once the write lands, and the process
	// must then exit 0.
	req, _ := http.NewRequest(http.MethodGet, r.URL()+"/records?minSeq="+strconv.FormatInt(rec.Seq+1, 10), nil)
	slow := testenv.InFlight(req)
	testenv.Terminate(t, r)
	resp, body = do(t, http.MethodPost, w.URL()+"/records", `{"type":"cmt","text":"the awaited one"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("second create: %d %s", resp.StatusCode, body)
	}
	select {
	case a := <-slow:
		if a.Err != nil || a.Status != http.StatusOK || !strings.Contains(a.Body, "the awaited one") {
			t.Errorf("in-flight read: %d %s %v, want 200 with the awaited record", a.Status, a.Body, a.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight read did not finish")
	}
	if code := r.Wait(5 * time.Second); code != 0 {
		t.Errorf("read exit code %d after SIGTERM, want 0", code)
	}

	// Master down: 503 + Retry-After within 3 s; back on the same port: creates work
	// again without restarting the function.
	pair.Master.Kill()
	start := time.Now()
	resp, body = do(t, http.MethodPost, w.URL()+"/records", `{"type":"cmt","text":"while down"}`)
	if d := time.Since(start); d > 3*time.Second || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("create with the master down: %d %s Retry-After %q after %s, want 503 with Retry-After within 3s",
			resp.StatusCode, body, resp.Header.Get("Retry-After"), d)
	}
	if err := pair.Master.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, body = do(t, http.MethodPost, w.URL()+"/records", `{"type":"cmt","text":"after restart"}`)
		if resp.StatusCode == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create after the master restarted: %d %s, want 201 within 3s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := w.Wait(5 * time.Second); code != 0 {
		t.Errorf("write exit code %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(w.Output(), `"msg":"stopped"`) {
		t.Errorf("write did not log its stop:\n%s", w.Output())
	}
	testenv.CheckLog(t, "cqrs-write", w.Output())
	testenv.CheckLog(t, "cqrs-read", r.Output())
	for _, s := range []struct {
		name string
		n    func() (int, error)
	}{
		{"master", func() (int, error) { return testenv.Calls(pair.Master, "keys") }},
		{"replica", func() (int, error) { return testenv.Calls(pair.Replica, "keys") }},
	} {
		if n, err := s.n(); err != nil || n != 0 {
			t.Errorf("KEYS on the %s: %d calls (%v), want none", s.name, n, err)
		}
	}
}

// TestBinariesBodyTimeout: BODY_TIMEOUT reaches every service built with ko: a body
// that stalls gets the 408 that names the value given, not the 10 s default. (The
// func build of cqrs-write is held to the same in functions/blackbox/funcpath.)
func TestBinariesBodyTimeout(t *testing.T) {
	b := testenv.StartBackend(t)
	for _, tt := range []struct {
		pkg, path string
		env       []string
	}{
		{testenv.WriteMain, "/records", b.WriteEnv()},
		{testenv.ReadMain, "/", b.ReadEnv()},
		{testenv.UIMain, "/api/records", []string{"WRITE_URL=http://" + b.Masters()[0].Addr(), "READ_URL=http://" + b.Replicas()[0].Addr()}},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			p := testenv.Start(t, testenv.Build(t, tt.pkg), append(tt.env, "BODY_TIMEOUT=50ms")...)
			testenv.Ready(t, p, 10*time.Second)
			testenv.WantBodyTimeout(t, "127.0.0.1:"+strconv.Itoa(p.Port), tt.path, "50ms")
		})
	}
}

// TestBinariesReadinessNamesNoAddress: a function whose Redis is down says so on its
// readiness probe in a few words, without the address or the dial error, which go
// to its log instead.
func TestBinariesReadinessNamesNoAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String() // nothing listens there once closed
	ln.Close()
	for _, tt := range []struct {
		pkg string
		env []string
	}{
		{testenv.WriteMain, []string{"REDIS_ADDR=" + closed}},
		{testenv.ReadMain, []string{"REDIS_ADDR=" + closed, "REDIS_MASTER_ADDR=" + closed}},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			p := testenv.Start(t, testenv.Build(t, tt.pkg), tt.env...)
			var resp *http.Response
			var body string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.Port)); err == nil {
					c.Close()
					resp, body = do(t, http.MethodGet, p.URL()+"/health/readiness", "")
					break
				}
			}
			if resp == nil {
				t.Fatalf("%s does not listen", tt.pkg)
			}
			if want := "not ready: redis is unavailable"; resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(body) != want {
				t.Errorf("readiness: %d %q, want 503 %q", resp.StatusCode, body, want)
			}
			logged := func() bool {
				return strings.Contains(p.Output(), `"msg":"not ready"`) && strings.Contains(p.Output(), closed)
			}
			for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond) // the log line may still be on its way through the pipe
			}
			if !logged() {
				t.Errorf("the log lacks the cause with the address %s:\n%s", closed, p.Output())
			}
		})
	}
}
