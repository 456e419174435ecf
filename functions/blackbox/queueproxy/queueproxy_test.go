// Package queueproxy holds no code, only tests: they build Knative Serving's own
// queue-proxy (knative.dev/serving/cmd/queue, at the version go.mod pins) and run each
// built function behind it with the environment Knative's revision reconciler gives
// the queue-proxy container. They show what a cluster would: readiness probes follow
// Redis, requests and CloudEvents pass through unchanged, containerConcurrency queues
// requests instead of overloading the function, and the queue-proxy's request metrics
// count them.
//
// queue-proxy binds its admin port 8022 and metrics ports 9090 and 9091 itself, on
// every interface, so only one runs at a time and the tests fail with a clear message
// when another process holds those ports.
package queueproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// Ports queue-proxy binds itself (knative.dev/serving/pkg/networking): admin, the
// autoscaler's metrics and the user-facing Prometheus metrics.
var fixedPorts = []int{8022, 9090, 9091}

func requirePorts(t *testing.T) {
	t.Helper()
	for _, p := range fixedPorts {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is taken (%v): queue-proxy binds its admin port 8022 and metrics ports 9090 and 9091 itself; stop the process holding it and run again", p, err)
		}
		l.Close()
	}
}

// loggingConfig is Knative's default zap configuration from config-logging.
const loggingConfig = `{"level":"info","development":false,"outputPaths":["stdout"],"errorOutputPaths":["stderr"],"encoding":"json","encoderConfig":{"timeKey":"timestamp","levelKey":"severity","nameKey":"logger","callerKey":"caller","messageKey":"message","stacktraceKey":"stacktrace","lineEnding":"","levelEncoder":"","timeEncoder":"iso8601","durationEncoder":"","callerEncoder":""}}`

// queue is one running queue-proxy in front of one function process.
type queue struct {
	proc *launch.Proc
	url  string
}

// startQueue runs queue-proxy in front of the function listening on userPort, with the
// environment that knative.dev/serving/pkg/reconciler/revision/resources/queue.go
// gives the queue-proxy container. The readiness probe is what the reconciler makes of
// the probe in knative/cqrs-*.yaml (httpGet /health/readiness, period 5 s, timeout 3 s).
func startQueue(t *testing.T, bin, service string, userPort, concurrency int) *queue {
	t.Helper()
	requirePorts(t)
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tlsPort, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	probe := fmt.Sprintf(`{"httpGet":{"path":"/health/readiness","port":%d,"host":"127.0.0.1","scheme":"HTTP"},"timeoutSeconds":3,"periodSeconds":5,"successThreshold":1,"failureThreshold":3}`, userPort)
	revision := service + "-00001"
	p := testenv.StartOnPort(t, bin, port,
		"SERVING_NAMESPACE=default",
		"SERVING_SERVICE="+service,
		"SERVING_CONFIGURATION="+service,
		"SERVING_REVISION="+revision,
		"SERVING_POD="+revision+"-deployment-7d9c8b5f4-x2k9q",
		"SERVING_POD_IP=127.0.0.1",
		"QUEUE_SERVING_PORT="+strconv.Itoa(port),
		"QUEUE_SERVING_TLS_PORT="+strconv.Itoa(tlsPort),
		"CONTAINER_CONCURRENCY="+strconv.Itoa(concurrency),
		"REVISION_TIMEOUT_SECONDS=30",
		"REVISION_RESPONSE_START_TIMEOUT_SECONDS=0",
		"REVISION_IDLE_TIMEOUT_SECONDS=0",
		"SERVING_LOGGING_CONFIG="+loggingConfig,
		"SERVING_LOGGING_LEVEL=info",
		"SERVING_REQUEST_LOG_TEMPLATE=",
		"SERVING_ENABLE_REQUEST_LOG=false",
		"SERVING_REQUEST_METRICS_BACKEND=prometheus",
		"SERVING_REQUEST_METRICS_REPORTING_PERIOD_SECONDS=5",
		"TRACING_CONFIG_BACKEND=none",
		"TRACING_CONFIG_ZIPKIN_ENDPOINT=",
		"TRACING_CONFIG_DEBUG=false",
		"TRACING_CONFIG_SAMPLE_RATE=0.1",
		"USER_PORT="+strconv.Itoa(userPort),
		"SYSTEM_NAMESPACE=knative-serving",
		"METRICS_DOMAIN=knative.dev/internal/serving",
		"SERVING_READINESS_PROBE="+probe,
		"ENABLE_PROFILING=false",
		"SERVING_ENABLE_PROBE_REQUEST_LOG=false",
		"METRICS_COLLECTOR_ADDRESS=",
		"HOST_IP=127.0.0.1",
		"ENABLE_HTTP2_AUTO_DETECTION=false",
		"ENABLE_HTTP_FULL_DUPLEX=false",
		"ROOT_CA=",
		"ENABLE_MULTI_CONTAINER_PROBES=false",
	)
	q := &queue{proc: p, url: p.URL()}
	// Wait until queue-proxy answers at all; whether it is ready is for the test.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code := p.Wait(time.Millisecond); code != -1 {
			t.Fatalf("queue-proxy exited with %d before listening:\n%s", code, p.Output())
		}
		if _, _, err := q.probe("kube-probe/1.29"); err == nil {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue-proxy not listening on %s after 15s:\n%s", q.url, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// probe sends a readiness probe the way the kubelet (User-Agent kube-probe/...) or the
// activator (Knative-Activator-Probe) does, with the header the reconciler puts on
// the queue-proxy's readiness probe.
func (q *queue) probe(userAgent string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, q.url+"/", nil)
	req.Header.Set("K-Network-Probe", "queue")
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitProbe probes until both kinds of prober get want.
func (q *queue) waitProbe(t *testing.T, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		kube, _, err1 := q.probe("kube-probe/1.29")
		act, body, err2 := q.probe("Knative-Activator-Probe")
		if err1 == nil && err2 == nil && kube == want && act == want {
			if want == http.StatusOK && body != "queue" {
				t.Fatalf("probe answered %d %q, want the queue-proxy's own body %q", act, body, "queue")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness probe through queue-proxy = kubelet %d (%v), activator %d (%v), want %d after %s\n%s",
				kube, err1, act, err2, want, timeout, q.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func do(t *testing.T, method, url string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// revisionCount sums a counter of queue-proxy's request metrics (port 9091) over the
// series with the given response code.
func revisionCount(t *testing.T, name string, code int) int {
	t.Helper()
	resp, err := client.Get("http://127.0.0.1:9091/metrics")
	if err != nil {
		t.Fatalf("scrape queue-proxy metrics: %v", err)
	}
	defer resp.Body.Close()
	sum := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") || !strings.Contains(l, `response_code="`+strconv.Itoa(code)+`"`) {
			continue
		}
		n, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		sum += int(n)
	}
	return sum
}

// waitCount waits until the counter reaches want, then checks it does not exceed it.
func waitCount(t *testing.T, name string, code, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := revisionCount(t, name, code)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s{response_code=%q} = %d, want %d", name, strconv.Itoa(code), got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const readMaxWait = 200 * time.Millisecond

func TestBehindQueueProxy(t *testing.T) {
	testenv.RequireRedis(t)
	requirePorts(t)
	qbin := testenv.Build(t, "knative.dev/serving/cmd/queue")
	wbin := testenv.Build(t, "./functions/cmd/cqrs-write")
	rbin := testenv.Build(t, "./functions/cmd/cqrs-read")
	pair := testenv.Redis(t)
	write := testenv.Start(t, wbin, "REDIS_ADDR="+pair.Master.Addr())
	read := testenv.Start(t, rbin, "REDIS_ADDR="+pair.Replica.Addr(), "REDIS_MASTER_ADDR="+pair.Master.Addr(),
		"READ_MAX_WAIT="+readMaxWait.String())
	testenv.Ready(t, write, 10*time.Second)
	testenv.Ready(t, read, 10*time.Second)

	var created record.Record
	t.Run("write passes requests", func(t *testing.T) {
		q := startQueue(t, qbin, "cqrs-write", write.Port, 64)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		resp, b := do(t, http.MethodPost, q.url+"/records", jsonHeader, `{"type":"bp","text":"through the queue proxy"}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /records = %d %s, want 201", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &created); err != nil || created.ID == "" || created.Seq < 1 {
			t.Fatalf("POST /records answered %s (%v), want a record", b, err)
		}
		if got, want := resp.Header.Get("Location"), "/records/"+created.ID; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		resp, b = do(t, http.MethodPost, q.url+"/records", http.Header{"Content-Type": {"text/plain"}}, "hello")
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(b), `"field":"Content-Type"`) {
			t.Errorf("POST text/plain = %d %s, want the function's own 415 naming Content-Type", resp.StatusCode, b)
		}
		waitCount(t, "revision_app_request_count", http.StatusCreated, 1)
	})

	t.Run("write passes CloudEvents", func(t *testing.T) {
		q := startQueue(t, qbin, "cqrs-write", write.Port, 64)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		h := http.Header{
			"Ce-Specversion": {"1.0"}, "Ce-Type": {"dev.cqrs.record.create"},
			"Ce-Source": {"/queueproxy-test"}, "Ce-Id": {"evt-" + strconv.FormatInt(time.Now().UnixNano(), 36)},
			"Content-Type": {"application/json"},
		}
		var ids []string
		for range 2 { // the second delivery is a redelivery: same record
			resp, b := do(t, http.MethodPost, q.url+"/", h, `{"type":"cmt","text":"an event through the queue proxy"}`)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != "dev.cqrs.record.created" {
				t.Fatalf("POST / event = %d, ce-type %q, body %s; want 200 with a dev.cqrs.record.created event",
					resp.StatusCode, resp.Header.Get("Ce-Type"), b)
			}
			var r record.Record
			if err := json.Unmarshal(b, &r); err != nil || r.ID == "" || r.Type != "cmt" {
				t.Fatalf("reply event data %s (%v), want the stored record", b, err)
			}
			ids = append(ids, r.ID)
		}
		if ids[0] != ids[1] {
			t.Errorf("redelivered event stored record %s, then %s; want the same record", ids[0], ids[1])
		}
	})

	t.Run("read passes requests", func(t *testing.T) {
		if created.ID == "" {
			t.Skip("no record was created through queue-proxy")
		}
		q := startQueue(t, qbin, "cqrs-read", read.Port, 64)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		resp, b := do(t, http.MethodGet, q.url+"/records?type=bp&minSeq="+strconv.FormatInt(created.Seq, 10), nil, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), created.ID) {
			t.Fatalf("GET /records?minSeq=%d = %d %s, want 200 holding %s", created.Seq, resp.StatusCode, b, created.ID)
		}
		if resp.Header.Get("X-Served-By") == "" || resp.Header.Get("X-Replica-Seq") == "" {
			t.Errorf("X-Served-By %q, X-Replica-Seq %q: want both passed through", resp.Header.Get("X-Served-By"), resp.Header.Get("X-Replica-Seq"))
		}
		resp, b = do(t, http.MethodGet, q.url+"/records/"+created.ID, nil, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), created.ID) {
			t.Errorf("GET /records/%s = %d %s, want 200", created.ID, resp.StatusCode, b)
		}
		ev := `{"specversion":"1.0","type":"dev.cqrs.records.query","source":"/queueproxy-test","id":"q1","datacontenttype":"application/json","data":{"type":"bp","limit":5}}`
		resp, b = do(t, http.MethodPost, q.url+"/", http.Header{"Content-Type": {"application/cloudevents+json"}}, ev)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "dev.cqrs.records.result") || !strings.Contains(string(b), created.ID) {
			t.Errorf("structured query event = %d %s, want 200 with a dev.cqrs.records.result holding %s", resp.StatusCode, b, created.ID)
		}
	})

	t.Run("read with containerConcurrency 1 queues requests", func(t *testing.T) {
		// Each request asks for a seq the master has and the replica will not reach
		// (it is cut off from the master meanwhile), so the function waits
		// READ_MAX_WAIT and then answers from the master: slow, and correct.
		q := startQueue(t, qbin, "cqrs-read", read.Port, 1)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		if _, err := pair.Replica.Do("REPLICAOF", "NO", "ONE"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := pair.Replica.Do("REPLICAOF", "127.0.0.1", strconv.Itoa(pair.Master.Port)); err != nil {
				t.Fatal(err)
			}
			if err := pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
				t.Fatal(err)
			}
		}()
		seq, err := pair.Master.Do("INCR", "cqrs:{p0}:seq")
		if err != nil {
			t.Fatal(err)
		}
		url := q.url + "/records?limit=1&minSeq=" + seq

		// queue-proxy holds 10 x containerConcurrency requests waiting besides the
		// ones running, so 10 fit; they must all succeed, one after another.
		run := func(n int) (codes []int, bodies []string, took time.Duration) {
			codes, bodies = make([]int, n), make([]string, n)
			var wg sync.WaitGroup
			start := time.Now()
			for i := range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
					resp, err := client.Do(req)
					if err != nil {
						bodies[i] = err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					codes[i], bodies[i] = resp.StatusCode, string(b)
					if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Served-By") != "master" {
						bodies[i] = "served by " + resp.Header.Get("X-Served-By") + ", want master"
						codes[i] = 0
					}
				})
			}
			wg.Wait()
			return codes, bodies, time.Since(start)
		}
		const n = 10
		codes, bodies, took := run(n)
		for i, c := range codes {
			if c != http.StatusOK {
				t.Errorf("request %d = %d %s, want 200 from the master after waiting", i, c, bodies[i])
			}
		}
		// One at a time, each waiting READ_MAX_WAIT: together at least n times that.
		// (This bounds serialization from below; it says nothing about speed.)
		if took < n*readMaxWait {
			t.Errorf("%d requests with containerConcurrency 1 took %s, want at least %s: they ran side by side", n, took, n*readMaxWait)
		}
		waitCount(t, "revision_request_count", http.StatusOK, n)
		waitCount(t, "revision_app_request_count", http.StatusOK, n)

		// 20 at once overflow that queue: queue-proxy itself refuses the rest with
		// 503 before they reach the function; the first 11 (1 running + 10 waiting)
		// always get through.
		codes, bodies, _ = run(20)
		ok, full := 0, 0
		for i, c := range codes {
			switch {
			case c == http.StatusOK:
				ok++
			case c == http.StatusServiceUnavailable && strings.Contains(bodies[i], "pending request queue full"):
				full++
			default:
				t.Errorf("request %d = %d %s, want 200 or queue-proxy's 503 queue full", i, c, bodies[i])
			}
		}
		if ok < 11 {
			t.Errorf("%d of 20 requests succeeded, want at least 11 (1 running + 10 queued)", ok)
		}
		t.Logf("20 concurrent requests, containerConcurrency 1: %d served, %d refused by queue-proxy", ok, full)
		waitCount(t, "revision_app_request_count", http.StatusOK, n+ok)
		waitCount(t, "revision_request_count", http.StatusServiceUnavailable, full)
	})

	t.Run("write readiness follows the master", func(t *testing.T) {
		q := startQueue(t, qbin, "cqrs-write", write.Port, 64)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		if err := pair.Master.Kill(); err != nil {
			t.Fatal(err)
		}
		q.waitProbe(t, http.StatusServiceUnavailable, 10*time.Second)
		resp, b := do(t, http.MethodPost, q.url+"/records", jsonHeader, `{"type":"bp","text":"while the master is down"}`)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST /records with the master down = %d %s (Retry-After %q), want the function's 503 with Retry-After",
				resp.StatusCode, b, resp.Header.Get("Retry-After"))
		}
		if err := pair.Master.Start(); err != nil {
			t.Fatal(err)
		}
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		if err := pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("read readiness follows replica and master", func(t *testing.T) {
		q := startQueue(t, qbin, "cqrs-read", read.Port, 64)
		q.waitProbe(t, http.StatusOK, 10*time.Second)
		// Each step stops or starts one Redis; readiness must then reach want. The
		// master is only the fallback: without it the replica still serves, and the
		// fallback alone is enough to be ready again.
		steps := []struct {
			name string
			do   func() error
			want int
		}{
			{"master killed", pair.Master.Kill, http.StatusOK},
			{"replica killed too", pair.Replica.Kill, http.StatusServiceUnavailable},
			{"master started", pair.Master.Start, http.StatusOK},
			{"replica started", func() error {
				if err := pair.Replica.Start(); err != nil {
					return err
				}
				return pair.Replica.WaitLinkUp(10 * time.Second)
			}, http.StatusOK},
		}
		for _, s := range steps {
			t.Logf("step: %s", s.name) // shown when waitProbe fails
			if err := s.do(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			q.waitProbe(t, s.want, 10*time.Second)
		}
	})
}
