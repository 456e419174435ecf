package testenv

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// WantError fails the test unless resp, with its body, is a JSON error answer with
// status that names field and has a message holding msg.
func WantError(tb testing.TB, resp *http.Response, body []byte, status int, field, msg string) {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var got struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		tb.Fatalf("body %s is not a JSON error: %v", body, err)
	}
	if got.Field != field || !strings.Contains(got.Error, msg) {
		tb.Errorf("error = %+v, want field %q and a message with %q", got, field, msg)
	}
}

// Metrics returns the lines of the /metrics page at base that start with prefix.
func Metrics(tb testing.TB, base, prefix string) map[string]bool {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	lines := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			lines[sc.Text()] = true
		}
	}
	return lines
}
