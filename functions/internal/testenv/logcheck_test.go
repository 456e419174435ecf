package testenv

import (
	"strings"
	"testing"
)

func TestOneObject(t *testing.T) {
	for _, tt := range []struct {
		line, wantErr string
	}{
		{`{"level":"INFO","msg":"listening","service":"cqrs-ui"}`, ""},
		{`{"a":{"b":1,"c":[1,{"b":2}]},"b":{"a":1},"d":[{"x":1},{"x":2}]}`, ""},
		{`{"service":"cqrs-ui","msg":"x","service":"cqrs-ui"}`, `key "service" twice`},
		{`{"a":{"b":1,"b":2}}`, `key "b" twice`},
		{`{"a":[{"k":1,"k":1}]}`, `key "k" twice`},
		{`{"a":{"x":1},"a":2}`, `key "a" twice`},
		{`cqrs-ui: configuration: PROXY_TIMEOUT`, "invalid character"},
		{`[1,2]`, "not a JSON object"},
		{`{"a":1}{"b":2}`, "more than one JSON value"},
		{`{"a":1`, "unexpected end"},
		{``, "unexpected end"},
	} {
		err := oneObject(tt.line)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("oneObject(%s) = %v, want %q", tt.line, err, tt.wantErr)
		}
	}
}
