package write

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// guarded serves the write function on master, as the runtime does.
func guarded(t *testing.T, master *redisproc.Server) (*Function, *httptest.Server) {
	t.Helper()
	testenv.QuietLogs(t)
	cfg := DefaultConfig()
	cfg.RedisAddr = master.Addr()
	f := NewWithConfig(cfg)
	if err := f.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(serve.Mux(f, serve.DefaultConfig()))
	t.Cleanup(func() { srv.Close(); f.Stop(context.Background()) })
	return f, srv
}

func configSet(t *testing.T, s *redisproc.Server, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := s.Do("CONFIG", "SET", kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

// createStatus posts one record and returns the status, the error body and the
// Retry-After header.
func createStatus(t *testing.T, url string) (int, serve.ErrorBody, string) {
	t.Helper()
	resp, body := testenv.Do(t, http.MethodPost, url+"/records", testenv.Header("Content-Type", "application/json"), `{"type":"bp","text":"room?"}`)
	var e serve.ErrorBody
	json.Unmarshal(body, &e)
	return resp.StatusCode, e, resp.Header.Get("Retry-After")
}

// TestCreatesOnAFullRedis: at maxmemory under noeviction a create answers 503
// store_full with Retry-After, nothing stored, readiness stays ready, and a metric
// says why while it lasts; once Redis has room, creates are stored again.
func TestCreatesOnAFullRedis(t *testing.T) {
	master := testenv.Master(t)
	_, srv := guarded(t, master)
	if status, _, _ := createStatus(t, srv.URL); status != http.StatusCreated {
		t.Fatalf("first create: %d, want 201", status)
	}
	// One byte: whatever the data set, Redis is over it.
	configSet(t, master, "maxmemory-policy", "noeviction", "maxmemory", "1")
	status, e, retry := createStatus(t, srv.URL)
	if status != http.StatusServiceUnavailable || e.Code != fail.EFULL || !strings.Contains(e.Error, "maxmemory") || retry == "" {
		t.Errorf("create on a full Redis: %d %+v Retry-After %q; want 503 %s naming maxmemory, with Retry-After", status, e, retry, fail.EFULL)
	}
	if resp, _ := testenv.Do(t, http.MethodGet, srv.URL+"/health/readiness", nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("readiness %d on a full Redis, want 200: a fast 503 beats requests queued elsewhere", resp.StatusCode)
	}
	m := testenv.Metrics(t, srv.URL, "cqrs_")
	for _, want := range []string{`cqrs_store_refusing_writes{reason="store_full"} 1`, `cqrs_create_failures_total{code="store_full"} 1`} {
		if !m[want] {
			t.Errorf("metrics lack %q", want)
		}
	}
	configSet(t, master, "maxmemory", "0")
	if status, _, _ := createStatus(t, srv.URL); status != http.StatusCreated {
		t.Errorf("create once Redis has room: %d, want 201", status)
	}
	if m := testenv.Metrics(t, srv.URL, "cqrs_"); !m[`cqrs_store_refusing_writes{reason="store_full"} 0`] {
		t.Errorf("metrics still say the store is full")
	}
}

// TestCreatesUnderAnEvictingPolicy: a maxmemory-policy that may evict would drop
// idempotency claims and indexes, so creates are refused with 503 naming the setting
// while it is in force (read from INFO memory, which managed Redis allows), and
// accepted again once it is noeviction.
func TestCreatesUnderAnEvictingPolicy(t *testing.T) {
	master := testenv.Master(t)
	configSet(t, master, "maxmemory", "100mb", "maxmemory-policy", "volatile-lru")
	f, srv := guarded(t, master)
	status, e, retry := createStatus(t, srv.URL)
	if status != http.StatusServiceUnavailable || e.Code != fail.EEVICTING || e.Field != "maxmemory-policy" ||
		!strings.Contains(e.Error, "volatile-lru") || !strings.Contains(e.Error, "noeviction") || retry == "" {
		t.Errorf("create under volatile-lru: %d %+v Retry-After %q; want 503 %s naming maxmemory-policy, the policy and the fix", status, e, retry, fail.EEVICTING)
	}
	if n, _ := master.Do("DBSIZE"); n != "0" {
		t.Errorf("the refused create stored %s keys", n)
	}
	if resp, _ := testenv.Do(t, http.MethodGet, srv.URL+"/health/readiness", nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("readiness %d, want 200", resp.StatusCode)
	}
	if m := testenv.Metrics(t, srv.URL, "cqrs_"); !m[`cqrs_store_refusing_writes{reason="eviction_policy"} 1`] {
		t.Errorf("metrics do not say creates are refused for the eviction policy")
	}
	configSet(t, master, "maxmemory-policy", "noeviction")
	f.guard.update(context.Background()) // what the watch does every guardPeriod
	if status, _, _ := createStatus(t, srv.URL); status != http.StatusCreated {
		t.Errorf("create under noeviction: %d, want 201", status)
	}
	if m := testenv.Metrics(t, srv.URL, "cqrs_"); !m[`cqrs_store_refusing_writes{reason="eviction_policy"} 0`] {
		t.Errorf("metrics still say creates are refused")
	}
}
