package testenv

import (
	"fmt"
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
		{`{"a":1e400,"b":18446744073709551616}`, ""},
		{`{"a":1`, "unexpected end"},
		{``, "unexpected end"},
	} {
		err := oneObject(tt.line)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("oneObject(%s) = %v, want %q", tt.line, err, tt.wantErr)
		}
	}
}

// recorder is a testing.TB that keeps what Errorf says.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckLog(t *testing.T) {
	out := `{"msg":"listening"}` + "\n\n" + `{"msg":"request","service":"a","service":"a"}` + "\n" +
		"panic: boom\n" + `{"msg":"half a line, still being writ`
	r := &recorder{TB: t}
	CheckLog(r, "cqrs-ui", out)
	want := []string{
		`cqrs-ui, log line 3: key "service" twice: {"msg":"request","service":"a","service":"a"}`,
		"cqrs-ui, log line 4: invalid character 'p' looking for beginning of value: panic: boom",
	}
	if strings.Join(r.errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", r.errs, want)
	}
}
