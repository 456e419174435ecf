package write_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// server runs the write function, as the runtime serves it, on a real master.
func server(t *testing.T, master *redisproc.Server, edit func(*write.Config)) *httptest.Server {
	t.Helper()
	return testfunc.Write(t, master, edit)
}

func post(t *testing.T, url, contentType, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	h := testenv.Header(header...)
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return testenv.Do(t, http.MethodPost, url, h, body)
}

func TestCreate(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	resp, body := post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"  Hello, world  "}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201; body %s", resp.StatusCode, body)
	}
	var got record.Record
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if got.ID == "" || got.Seq != 1 || got.Type != "bp" || got.Text != "Hello, world" || time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("record = %+v, want id, seq 1, type bp, trimmed text, a recent createdAt", got)
	}
	if loc := resp.Header.Get("Location"); loc != "/records/"+got.ID {
		t.Errorf("Location = %q, want /records/%s", loc, got.ID)
	}
	for _, k := range []string{`"id"`, `"seq"`, `"type"`, `"text"`, `"createdAt"`} {
		if !strings.Contains(string(body), k) {
			t.Errorf("body %s lacks %s", body, k)
		}
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantField   string
	}{
		{"unknown type", "application/json", `{"type":"blog","text":"x"}`, 400, "type"},
		{"missing type", "application/json", `{"text":"x"}`, 400, "type"},
		{"blank text", "application/json", `{"type":"bp","text":"   "}`, 400, "text"},
		{"missing text", "application/json", `{"type":"bp"}`, 400, "text"},
		{"text over 4096 bytes", "application/json", `{"type":"bp","text":"` + strings.Repeat("a", 4097) + `"}`, 400, "text"},
		{"body over 64 KiB", "application/json", `{"type":"bp","text":"` + strings.Repeat("a", 70000) + `"}`, 413, "body"},
		{"malformed JSON", "application/json", `{"type":"bp",`, 400, "body"},
		{"not an object", "application/json", `["bp","x"]`, 400, ""},
		{"text not a string", "application/json", `{"type":"bp","text":5}`, 400, "text"},
		{"unknown field", "application/json", `{"type":"bp","text":"x","d_type":"bp"}`, 400, "d_type"},
		{"two values", "application/json", `{"type":"bp","text":"x"}{}`, 400, "body"},
		{"empty body", "application/json", ``, 400, "body"},
		{"invalid UTF-8", "application/json", "{\"type\":\"bp\",\"text\":\"a\xff\xfeb\"}", 400, "text"},
		{"form content type", "application/x-www-form-urlencoded", `type=bp&text=x`, 415, "Content-Type"},
		{"text/plain", "text/plain", `{"type":"bp","text":"x"}`, 415, "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv.URL+"/records", tt.contentType, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			var e struct{ Error, Field string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("body %s is not {\"error\":...}: %v", body, err)
			}
			if tt.wantField != "" && e.Field != tt.wantField {
				t.Errorf("field %q, want %q (error %q)", e.Field, tt.wantField, e.Error)
			}
		})
	}
	// Nothing above may have been stored.
	resp, body := post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"first valid"}`)
	var rec record.Record
	json.Unmarshal(body, &rec)
	if resp.StatusCode != http.StatusCreated || rec.Seq != 1 {
		t.Errorf("first valid create: status %d seq %d, want 201 and seq 1", resp.StatusCode, rec.Seq)
	}
}

func TestRoutes(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/records", 405},
		{http.MethodDelete, "/records", 405},
		{http.MethodGet, "/nope", 404},
		{http.MethodGet, "/health/readiness", 200},
		{http.MethodGet, "/health/liveness", 200},
		{http.MethodGet, "/metrics", 200},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.want == 405 && resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s %s: Allow = %q, want POST", tt.method, tt.path, resp.Header.Get("Allow"))
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	body := `{"type":"cmt","text":"only once"}`
	r1, b1 := post(t, srv.URL+"/records", "application/json", body, "Idempotency-Key", "order-42")
	r2, b2 := post(t, srv.URL+"/records", "application/json", body, "Idempotency-Key", "order-42")
	if r1.StatusCode != 201 || r2.StatusCode != 200 {
		t.Fatalf("statuses %d then %d, want 201 then 200", r1.StatusCode, r2.StatusCode)
	}
	if string(b1) != string(b2) {
		t.Errorf("replay body %s, want the first record %s", b2, b1)
	}
	if r1.Header.Get("Location") != r2.Header.Get("Location") {
		t.Errorf("Location %q then %q, want equal", r1.Header.Get("Location"), r2.Header.Get("Location"))
	}
	// A different key stores a new record: the first had seq 1, so this has seq 2.
	_, b3 := post(t, srv.URL+"/records", "application/json", body, "Idempotency-Key", "order-43")
	var rec record.Record
	json.Unmarshal(b3, &rec)
	if rec.Seq != 2 {
		t.Errorf("create with a new key: seq %d, want 2 (the replay stored nothing)", rec.Seq)
	}
	for _, bad := range []string{strings.Repeat("k", 256), "has space", "tab\tkey"} {
		r, b := post(t, srv.URL+"/records", "application/json", body, "Idempotency-Key", bad)
		if r.StatusCode != 400 || !strings.Contains(string(b), "Idempotency-Key") {
			t.Errorf("Idempotency-Key %q: %d %s, want 400 naming the header", bad, r.StatusCode, b)
		}
	}
}

func TestConcurrentCreatesHaveDistinctIDsAndGaplessSeqs(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	const total, workers = 1000, 32
	ids := make(map[string]bool)
	seqs := make(map[int64]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan int)
	errs := make(chan error, total)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				resp, err := http.Post(srv.URL+"/records", "application/json",
					strings.NewReader(fmt.Sprintf(`{"type":"rvw","text":"review %d"}`, i)))
				if err != nil {
					errs <- err
					continue
				}
				var rec record.Record
				err = json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 201 {
					errs <- fmt.Errorf("create %d: status %d, %v", i, resp.StatusCode, err)
					continue
				}
				mu.Lock()
				ids[rec.ID] = true
				seqs[rec.Seq] = true
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ids) != total {
		t.Errorf("%d distinct ids, want %d", len(ids), total)
	}
	for s := int64(1); s <= total; s++ {
		if !seqs[s] {
			t.Fatalf("seq %d missing: seqs must be 1..%d without gaps", s, total)
		}
	}
}

func TestMasterDownThenBack(t *testing.T) {
	m := testenv.Master(t)
	srv := server(t, m, nil)
	body := `{"type":"bp","text":"x"}`
	if r, b := post(t, srv.URL+"/records", "application/json", body); r.StatusCode != 201 {
		t.Fatalf("create before the fault: %d %s", r.StatusCode, b)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, b := post(t, srv.URL+"/records", "application/json", body)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("create with the master down took %s, want at most 3s", d)
	}
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("create with the master down: %d Retry-After %q %s, want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"), b)
	}
	if resp, err := http.Get(srv.URL + "/health/readiness"); err != nil || resp.StatusCode != 503 {
		t.Errorf("readiness with the master down: %v %v, want 503", resp.StatusCode, err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, b = post(t, srv.URL+"/records", "application/json", body)
		if r.StatusCode == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("creates after the master came back: %d %s, want 201 within 3s", r.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsCountCreates(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	for range 3 {
		post(t, srv.URL+"/records", "application/json", `{"type":"cmt","text":"counted"}`)
	}
	post(t, srv.URL+"/records", "application/json", `{"type":"nope","text":"refused"}`)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`cqrs_records_created_total{type="cmt"} 3`,
		`cqrs_create_failures_total{code="invalid"} 1`,
		`http_requests_total{code="201",method="post"} 3`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestWriteReplicasReportsUnreplicated(t *testing.T) {
	pair := testenv.Redis(t)
	srv := server(t, pair.Master, func(c *write.Config) {
		c.WriteReplicas = 1
		c.WriteWaitTimeout = 200 * time.Millisecond
	})
	r, b := post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"durable"}`)
	if r.StatusCode != 201 || r.Header.Get("X-Replicated") != "true" || !strings.Contains(string(b), `"replicated":true`) {
		t.Errorf("with a live replica: %d X-Replicated %q %s, want 201, true", r.StatusCode, r.Header.Get("X-Replicated"), b)
	}
	pair.Replica.Kill()
	r, b = post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"not durable"}`)
	if r.StatusCode != 202 || r.Header.Get("X-Replicated") != "false" || !strings.Contains(string(b), `"replicated":false`) {
		t.Errorf("with the replica down: %d X-Replicated %q %s, want 202, false", r.StatusCode, r.Header.Get("X-Replicated"), b)
	}
}

func TestStalledBodyGets408(t *testing.T) {
	cfg := write.DefaultConfig()
	cfg.RedisAddr = testenv.Master(t).Addr()
	rc := serve.DefaultConfig()
	rc.BodyTimeout = 200 * time.Millisecond
	srv := testfunc.ServeWith(t, write.NewWithConfig(cfg), rc)
	// Promise 100 bytes, send 10, then nothing.
	resp := testenv.Raw(t, strings.TrimPrefix(srv.URL, "http://"),
		"POST /records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":\"b")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "within 200ms") {
		t.Errorf("stalled body: %d %s, want 408 naming the configured 200ms", resp.StatusCode, b)
	}
}

func TestIdempotencyKeyWithOtherContentIs422(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	r1, b1 := post(t, srv.URL+"/records", "application/json", `{"type":"cmt","text":"first"}`, "Idempotency-Key", "k-1")
	r2, b2 := post(t, srv.URL+"/records", "application/json", `{"type":"cmt","text":"other"}`, "Idempotency-Key", "k-1")
	if r1.StatusCode != 201 {
		t.Fatalf("first create: %d %s", r1.StatusCode, b1)
	}
	if r2.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b2), `"field":"Idempotency-Key"`) {
		t.Errorf("same key, other text: %d %s, want 422 naming Idempotency-Key", r2.StatusCode, b2)
	}
	r3, _ := post(t, srv.URL+"/records", "application/json", `{"type":"rvw","text":"first"}`, "Idempotency-Key", "k-1")
	if r3.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("same key, other type: %d, want 422", r3.StatusCode)
	}
	r4, b4 := post(t, srv.URL+"/records", "application/json", `{"type":"cmt","text":"  first "}`, "Idempotency-Key", "k-1")
	if r4.StatusCode != 200 || string(b4) != string(b1) {
		t.Errorf("same key, same content after trimming: %d %s, want 200 with the first record", r4.StatusCode, b4)
	}
}

func TestEventIDReusedWithOtherDataIs422(t *testing.T) {
	srv := server(t, testenv.Master(t), nil)
	send := func(text string) (*http.Response, []byte) {
		return post(t, srv.URL+"/", "application/json", `{"type":"bp","text":"`+text+`"}`,
			"Ce-Specversion", "1.0", "Ce-Type", record.EventCreate, "Ce-Source", "test", "Ce-Id", "e-1")
	}
	if r, b := send("one"); r.StatusCode != 200 {
		t.Fatalf("first event: %d %s", r.StatusCode, b)
	}
	if r, b := send("one"); r.StatusCode != 200 || r.Header.Get("Ce-Replayed") != "true" {
		t.Errorf("redelivery: %d %s (Ce-Replayed %q), want 200 replayed", r.StatusCode, b, r.Header.Get("Ce-Replayed"))
	}
	// 422, not 409: Knative retries 409, and no retry can make this event valid.
	if r, b := send("two"); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), `"field":"id"`) {
		t.Errorf("same source and id, other data: %d %s, want 422 naming id", r.StatusCode, b)
	}
}

func TestLostAnswerSaysOutcomeUnknown(t *testing.T) {
	// The create script reaches Redis and runs, but its answer is lost on the way
	// back: the function cannot know whether the record is stored, and must not say
	// "redis is unavailable" (a client would retry without a key and store it twice).
	m := testenv.Master(t)
	link := testenv.NewProxy(t, m.Addr())
	srv := server(t, m, func(c *write.Config) { c.RedisAddr = link.Addr })
	const key = "lost-answer-1"
	link.Drop(true)
	resp, body := post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"maybe stored"}`, "Idempotency-Key", key)
	link.Drop(false)
	var e serve.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || e.Code != fail.EUNKNOWN || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("lost answer: %d %s, want 503 with code %s and Retry-After", resp.StatusCode, body, fail.EUNKNOWN)
	}
	if !strings.Contains(e.Error, "Idempotency-Key") {
		t.Errorf("message %q does not tell the client to retry with the same Idempotency-Key", e.Error)
	}
	// It was stored; the retry with the same key gets that one record back.
	resp, body = post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"maybe stored"}`, "Idempotency-Key", key)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s, want 200 replaying the record stored by the lost create", resp.StatusCode, body)
	}
	if n, err := m.Do("GET", "cqrs:{p0}:seq"); err != nil || n != "1" {
		t.Errorf("seq on the master = %q (%v), want 1: one record, stored once", n, err)
	}
}

func TestRefusedConnectionIsUnavailableNotUnknown(t *testing.T) {
	// Nothing was sent when Redis cannot be reached: a plain 503, safe to retry.
	m := testenv.Master(t)
	srv := server(t, m, nil)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, srv.URL+"/records", "application/json", `{"type":"bp","text":"x"}`)
	var e serve.ErrorBody
	json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Code != fail.EUNAVAILABLE {
		t.Errorf("Redis down: %d %s, want 503 with code %s", resp.StatusCode, body, fail.EUNAVAILABLE)
	}
}
