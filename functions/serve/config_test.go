package serve

import (
	"strings"
	"testing"
)

func TestLoadRefusesValuesThatCannotWork(t *testing.T) {
	for _, tt := range []struct{ key, val, want string }{
		{"PORT", "0", "PORT=0: must be between 1 and 65535"},
		{"PORT", "http", `PORT="http": not a valid`},
		{"DRAIN_TIMEOUT", "0s", "DRAIN_TIMEOUT=0s: must be positive"},
		{"BODY_TIMEOUT", "500us", "BODY_TIMEOUT=500µs: must be between 1ms and 10m"},
		{"BODY_TIMEOUT", "11m", "BODY_TIMEOUT=11m0s: must be between 1ms and 10m"},
		{"METRICS_PORT", "-1", "METRICS_PORT=-1: must be between 1 and 65535 and not PORT"},
		{"METRICS_PORT", "8080", "METRICS_PORT=8080: must be between 1 and 65535 and not PORT"},
	} {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			t.Setenv(tt.key, tt.val)
			_, err := Load(DefaultConfig())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one line starting with %q", err, tt.want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		if _, err := Load(DefaultConfig()); err != nil {
			t.Errorf("got %v, want the defaults to work", err)
		}
	})
}
