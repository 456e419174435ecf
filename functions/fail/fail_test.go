package fail

import (
	"errors"
	"fmt"
	"testing"
)

func TestCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"an Error", Invalid("x", "bad"), EINVALID},
		{"wrapped", fmt.Errorf("wrapped: %w", Unavailable("down", errors.New("dial"))), EUNAVAILABLE},
		{"plain", errors.New("plain"), EINTERNAL},
	} {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("%s: Code(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	e := Unavailable("redis is unavailable", cause)
	if got, want := e.Error(), "redis is unavailable: dial tcp: refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, cause) {
		t.Errorf("errors.Is(%v, cause) = false, want the cause unwrapped", e)
	}
	if got, want := Invalidf("limit", "limit %d is over %d", 200, 100).Error(), "limit 200 is over 100"; got != want {
		t.Errorf("Invalidf: %q, want %q", got, want)
	}
}
