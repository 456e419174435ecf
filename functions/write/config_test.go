package write

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

func TestDefaultConfigMatchesEnvDefaults(t *testing.T) {
	for _, k := range []string{"REDIS_ADDR", "REDIS_PASSWORD", "REDIS_SENTINEL_ADDRS", "REDIS_SENTINEL_MASTER",
		"REDIS_POOL_SIZE", "RECORD_TYPES", "MAX_TEXT_BYTES", "WRITE_REPLICAS", "WRITE_WAIT_TIMEOUT", "IDEMPOTENCY_TTL",
		"K_SINK", "K_CE_OVERRIDES", "OUTBOX_MAX_PENDING", "OUTBOX_ATTEMPTS", "OUTBOX_LEASE", "OUTBOX_POLL", "OUTBOX_SEND_TIMEOUT"} {
		unsetenv(t, k)
	}
	got, err := serve.Load(DefaultConfig())
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	if want := DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("serve.Load(DefaultConfig()) = %+v, want DefaultConfig() %+v", got, want)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "") // registers the restore
	os.Unsetenv(k)
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct{ key, val string }{
		{"WRITE_REPLICAS", "x"},
		{"WRITE_REPLICAS", "-1"},
		{"WRITE_WAIT_TIMEOUT", "soon"},
		{"WRITE_WAIT_TIMEOUT", "0s"},
		{"WRITE_WAIT_TIMEOUT", "500us"},
		{"MAX_TEXT_BYTES", "0"},
		{"IDEMPOTENCY_TTL", "10ms"},
		{"RECORD_TYPES", "bp,Blog Post"},
		{"RECORD_TYPES", "bp,cmt,bp"},
		{"REDIS_POOL_SIZE", "0"},
		{"K_SINK", "broker-ingress"},
		{"K_SINK", "ftp://broker"},
		{"K_CE_OVERRIDES", "{"},
		{"K_CE_OVERRIDES", `{"extensions":{"Bad-Name":"x"}}`},
		{"K_CE_OVERRIDES", `{"extensions":{"id":"x"}}`},
		{"K_CE_OVERRIDES", `{"extensions":{"a":{"nested":1}}}`},
		{"OUTBOX_MAX_PENDING", "0"},
		{"OUTBOX_ATTEMPTS", "0"},
		{"OUTBOX_LEASE", "100ms"},
		{"OUTBOX_POLL", "9s"},
		{"OUTBOX_SEND_TIMEOUT", "1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			t.Setenv(tt.key, tt.val)
			_, err := serve.Load(DefaultConfig())
			if err == nil {
				t.Fatalf("Load with %s=%q: no error", tt.key, tt.val)
			}
			if !strings.HasPrefix(err.Error(), tt.key) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line starting with %s", err, tt.key)
			}
		})
	}
}

func TestParseOverrides(t *testing.T) {
	got, err := parseOverrides(`{"extensions":{"region":"eu","tier":2,"beta":true}}`)
	want := map[string]string{"region": "eu", "tier": "2", "beta": "true"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseOverrides = %v, %v; want %v", got, err, want)
	}
	if got, err := parseOverrides(""); err != nil || got != nil {
		t.Errorf("parseOverrides(\"\") = %v, %v; want none", got, err)
	}
}
