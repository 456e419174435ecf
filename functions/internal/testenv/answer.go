package testenv

import (
	"bufio"
	"encoding/json"
	"io"
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

// Refusal is a request that a function must refuse and the JSON error it must answer.
type Refusal struct {
	Name    string
	Header  http.Header
	Body    string
	Status  int
	Field   string
	Message string // a part of the error message
}

// WantRefusals posts each refusal's body with its header to url, one subtest each,
// and checks the error answered.
func WantRefusals(t *testing.T, url string, refusals []Refusal) {
	t.Helper()
	for _, r := range refusals {
		t.Run(r.Name, func(t *testing.T) {
			resp, body := Do(t, http.MethodPost, url, r.Header, r.Body)
			WantError(t, resp, body, r.Status, r.Field, r.Message)
		})
	}
}

// Refuse makes a Refusal; tables of them stay one line a case.
func Refuse(name string, h http.Header, body string, status int, field, message string) Refusal {
	return Refusal{Name: name, Header: h, Body: body, Status: status, Field: field, Message: message}
}

// WantBodyTimeout sends path on addr (host:port) a POST whose body stalls after its
// first bytes, and fails the test unless the answer is the runtime's 408 naming the
// BODY_TIMEOUT the process was given (want, such as "50ms"): proof that the setting
// reached the request, whichever build read it. The 5 s that Raw waits is far beyond
// a short BODY_TIMEOUT and short of the 10 s default.
func WantBodyTimeout(tb testing.TB, addr, path, want string) {
	tb.Helper()
	resp := Raw(tb, addr, "POST "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"type\":")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct{ Error, Field, Code string }
	json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusRequestTimeout || e.Code != "timeout" || e.Field != "body" ||
		!strings.Contains(e.Error, "within "+want+" ") {
		tb.Errorf("POST %s with a stalled body: %d %s, want 408 timeout naming body and BODY_TIMEOUT %s", path, resp.StatusCode, body, want)
	}
}
