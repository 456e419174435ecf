package funcpath

import (
	"debug/buildinfo"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

func post(t *testing.T, url string, h http.Header, body string) (*http.Response, string) {
	t.Helper()
	resp, b := testenv.Do(t, http.MethodPost, url, h, body)
	return resp, string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, b := testenv.Do(t, http.MethodGet, url, nil, "")
	return resp, string(b)
}

// eventually retries check every 50 ms until it holds or timeout has passed.
func eventually(timeout time.Duration, check func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// TestFuncGoWrite runs cqrs-write as func builds it and holds it to the checks the
// ko image passes: probes that follow Redis, creates over HTTP and as CloudEvents in
// both modes, /metrics, and a drain on SIGTERM that lets an in-flight create finish.
func TestFuncGoWrite(t *testing.T) {
	pair := testenv.Redis(t)
	bin := funcGoWrite(t)
	// PORT alone is what `func run` sets; WRITE_REPLICAS=1 gives the drain below a
	// create that waits on the replica.
	w := testenv.Start(t, bin, "REDIS_ADDR="+pair.Master.Addr(), "K_SERVICE=cqrs-write",
		"WRITE_REPLICAS=1", "WRITE_WAIT_TIMEOUT=2s")
	testenv.Ready(t, w, 10*time.Second)

	if resp, body := get(t, w.URL()+"/health/liveness"); resp.StatusCode != http.StatusOK {
		t.Errorf("liveness: %d %s", resp.StatusCode, body)
	}

	// Create over HTTP.
	jsonType := testenv.Header("Content-Type", "application/json")
	resp, body := post(t, w.URL()+"/records", jsonType, `{"type":"bp","text":"built by func"}`)
	var rec record.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil || resp.StatusCode != http.StatusCreated ||
		resp.Header.Get("Location") != "/records/"+rec.ID || rec.Text != "built by func" {
		t.Fatalf("create: %d Location %q %s, want 201 with the record and its Location", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if resp.Header.Get("X-Replicated") != "true" {
		t.Errorf("create: X-Replicated %q, want true (WRITE_REPLICAS=1, replica up)", resp.Header.Get("X-Replicated"))
	}
	if resp, body := post(t, w.URL()+"/records", jsonType, `{"type":"bp","text":""}`); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"text"`) {
		t.Errorf("blank text: %d %s, want 400 naming text", resp.StatusCode, body)
	}

	// CloudEvents on POST /, answered in the mode they came in.
	t.Run("binary event", func(t *testing.T) {
		h := testenv.Header("Content-Type", "application/json", "Ce-Specversion", "1.0",
			"Ce-Type", record.EventCreate, "Ce-Source", "/test/broker", "Ce-Id", "funcgo-binary")
		resp, body := post(t, w.URL()+"/", h, `{"type":"cmt","text":"a binary event"}`)
		var r record.Record
		json.Unmarshal([]byte(body), &r)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != record.EventCreated ||
			resp.Header.Get("Ce-Source") != "cqrs-write" || r.Text != "a binary event" || r.ID == "" {
			t.Errorf("binary event: %d Ce-Type %q Ce-Source %q %s, want 200, %s from cqrs-write with the record",
				resp.StatusCode, resp.Header.Get("Ce-Type"), resp.Header.Get("Ce-Source"), body, record.EventCreated)
		}
	})
	t.Run("structured event", func(t *testing.T) {
		h := testenv.Header("Content-Type", "application/cloudevents+json")
		resp, body := post(t, w.URL()+"/", h, `{"specversion":"1.0","type":"`+record.EventCreate+
			`","source":"/test/broker","id":"funcgo-structured","datacontenttype":"application/json","data":{"type":"rvw","text":"a structured event"}}`)
		var ev struct {
			Type   string        `json:"type"`
			Source string        `json:"source"`
			Data   record.Record `json:"data"`
		}
		json.Unmarshal([]byte(body), &ev)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cloudevents+json") ||
			ev.Type != record.EventCreated || ev.Source != "cqrs-write" || ev.Data.Text != "a structured event" {
			t.Errorf("structured event: %d %q %s, want 200, a structured %s from cqrs-write with the record",
				resp.StatusCode, resp.Header.Get("Content-Type"), body, record.EventCreated)
		}
	})

	// /metrics: the ko image's, served through func-go's catch-all route.
	resp, body = get(t, w.URL()+"/metrics")
	for _, want := range []string{
		`cqrs_records_created_total{type="bp"} 1`,
		`cqrs_records_created_total{type="cmt"} 1`,
		`cqrs_events_total{outcome="created",type="` + record.EventCreate + `"} 2`,
		`http_requests_total{code="201",method="post"} 1`,
		`http_requests_total{code="400",method="post"} 1`,
		`go_goroutines `,
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", resp.StatusCode, want)
		}
	}
	testenv.WaitOutput(t, w, `"msg":"record created"`, 10*time.Second)

	// Readiness follows the master: down is not ready (func-go answers 500 with the
	// reason), liveness stays; back on the same port is ready again.
	pair.Master.Kill()
	var ready *http.Response
	var reason string
	if !eventually(3*time.Second, func() bool { ready, reason = get(t, w.URL()+"/health/readiness"); return ready.StatusCode >= 300 }) {
		t.Errorf("readiness with the master down: %d, want a failure within 3s", ready.StatusCode)
	}
	if !strings.Contains(reason, "redis is unavailable") || strings.Contains(reason, pair.Master.Addr()) {
		t.Errorf("readiness with the master down says %q, want the short reason without the address", reason)
	}
	if resp, body := get(t, w.URL()+"/health/liveness"); resp.StatusCode != http.StatusOK {
		t.Errorf("liveness with the master down: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, body := post(t, w.URL()+"/records", jsonType, `{"type":"bp","text":"while down"}`); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("create with the master down: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if err := pair.Master.Start(); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { ready, _ = get(t, w.URL()+"/health/readiness"); return ready.StatusCode == http.StatusOK }) {
		t.Fatalf("readiness after the master came back: %d, want 200 within 5s", ready.StatusCode)
	}
	if err := pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Drain: with the replica gone, a create waits WRITE_WAIT_TIMEOUT for it. SIGTERM
	// arrives meanwhile: new connections are refused, the create still gets its
	// answer (202, stored but not replicated), then the process exits 0.
	pair.Replica.Kill()
	req, _ := http.NewRequest(http.MethodPost, w.URL()+"/records", strings.NewReader(`{"type":"bp","text":"in flight"}`))
	req.Header.Set("Content-Type", "application/json")
	inflight := testenv.InFlight(req)
	testenv.Terminate(t, w)
	select {
	case a := <-inflight:
		if a.Err != nil || a.Status != http.StatusAccepted || !strings.Contains(a.Body, `"replicated":false`) {
			t.Errorf("in-flight create: %d %s %v, want 202 stored but not replicated", a.Status, a.Body, a.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight create did not finish")
	}
	if code := w.Wait(5 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// TestFuncGoStartErrors: a bad value stops the func-go build at start, with a
// message naming the variable; DRAIN_TIMEOUT cannot change func-go's drain, so any
// value but that drain is refused rather than ignored.
func TestFuncGoStartErrors(t *testing.T) {
	bin := funcGoWrite(t)
	for _, tt := range []struct{ key, val string }{
		{"WRITE_REPLICAS", "two"},
		{"DRAIN_TIMEOUT", "10s"},
		{"DRAIN_TIMEOUT", "soon"},
		{"METRICS_PORT", "9090"},
	} {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			p := testenv.Start(t, bin, "REDIS_ADDR=127.0.0.1:1", tt.key+"="+tt.val)
			code := p.Wait(10 * time.Second)
			if code <= 0 {
				t.Fatalf("exit code %d, want a failure at start", code)
			}
			line := lastLine(p.Output())
			t.Logf("%s=%s: exit %d: %s", tt.key, tt.val, code, line)
			if !strings.HasPrefix(line, "configuration: "+tt.key+"=") {
				t.Errorf("last line %q, want the configuration error naming %s", line, tt.key)
			}
		})
	}
	t.Run("DRAIN_TIMEOUT=30s", func(t *testing.T) {
		p := testenv.Start(t, bin, "REDIS_ADDR=127.0.0.1:1", "DRAIN_TIMEOUT=30s")
		waitListening(t, p)
		// Started, with no Redis to reach: func-go answers 500 with the reason.
		var resp *http.Response
		var body string
		if !eventually(5*time.Second, func() bool {
			resp, body = get(t, p.URL()+"/health/readiness")
			return resp.StatusCode == http.StatusInternalServerError
		}) {
			t.Errorf("readiness: %d %s, want 500 once started: func-go's own drain is accepted", resp.StatusCode, body)
		}
	})
}

// TestFuncGoBodyTimeout: BODY_TIMEOUT takes effect under the func build as under the
// ko image: a body that stalls gets the 408 that names the value given, not the 10 s
// default.
func TestFuncGoBodyTimeout(t *testing.T) {
	pair := testenv.Redis(t)
	p := testenv.Start(t, funcGoWrite(t), "REDIS_ADDR="+pair.Master.Addr(), "BODY_TIMEOUT=50ms")
	testenv.Ready(t, p, 10*time.Second)
	testenv.WantBodyTimeout(t, "127.0.0.1:"+strconv.Itoa(p.Port), "/records", "50ms")
}

// TestFuncGoBeforeStart: func-go listens while Start still runs. Until Start has
// finished, readiness says no and requests get 503, never a crash. A Redis that
// accepts connections and never answers holds Start in its script load.
func TestFuncGoBeforeStart(t *testing.T) {
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := testenv.Start(t, funcGoWrite(t), "REDIS_ADDR="+mute.Addr().String())
	waitListening(t, p)
	resp, body := get(t, p.URL()+"/health/readiness")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readiness while starting: %d %s, want 503", resp.StatusCode, body)
	}
	resp, body = post(t, p.URL()+"/records", testenv.Header("Content-Type", "application/json"), `{"type":"bp","text":"too early"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "starting") {
		t.Errorf("create while starting: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	if resp, _ = get(t, p.URL()+"/metrics"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/metrics while starting: %d, want 503", resp.StatusCode)
	}
}

// TestFuncGoLinksWhatKoLinks: the func-go build links every module the ko image
// links at the same version; it adds only the func-go runtime and its logger.
func TestFuncGoLinksWhatKoLinks(t *testing.T) {
	deps := func(bin string) map[string]string {
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, d := range bi.Deps {
			m[d.Path] = d.Version
		}
		return m
	}
	ko, fg := deps(testenv.Build(t, testenv.WriteMain)), deps(funcGoWrite(t))
	for path, v := range ko {
		if fg[path] != v {
			t.Errorf("%s: %s in the ko image, %q in the func-go build", path, v, fg[path])
		}
	}
	var extra []string
	for path, v := range fg {
		if _, ok := ko[path]; !ok {
			extra = append(extra, path+"@"+v)
		}
	}
	t.Logf("only in the func-go build: %s", strings.Join(extra, " "))
	if fg["knative.dev/func-go"] == "" {
		t.Errorf("the func-go build does not link knative.dev/func-go")
	}
}

// waitListening waits until p accepts connections.
func waitListening(t *testing.T, p *launch.Proc) {
	t.Helper()
	if !eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.Port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("%s does not listen:\n%s", p.Name, p.Output())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
