package ui

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// TestProxyBodyBounds: a body that stalls or is too large is answered by the UI
// itself (408, 413, JSON) and the write function gets nothing, not half a request.
func TestProxyBodyBounds(t *testing.T) {
	fn, got := capture(t)
	cfg := DefaultConfig()
	cfg.WriteURL, cfg.ReadURL, cfg.ProxyTimeout = fn, fn, 5*time.Second
	rc := serve.DefaultConfig()
	rc.BodyTimeout = 300 * time.Millisecond
	ui := newUIRuntime(t, cfg, rc)
	for _, p := range []string{"/api/records", "/add"} {
		c, err := net.Dial("tcp", ui.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST "+p+" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var e serve.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		c.Close()
		if resp.StatusCode != http.StatusRequestTimeout || e.Code != fail.ETIMEOUT || e.Field != "body" || !strings.Contains(e.Error, "300ms") {
			t.Errorf("%s with a stalled body: got %d %+v, want 408 timeout naming body and the configured 300ms", p, resp.StatusCode, e)
		}
		big := `{"type":"bp","text":"` + strings.Repeat("x", serve.MaxBodyBytes) + `"}`
		r, body := do(t, http.MethodPost, ui.URL+p, "application/json", big, nil)
		if e := errorBody(t, r, body); r.StatusCode != http.StatusRequestEntityTooLarge || e.Field != "body" {
			t.Errorf("%s with %d bytes: got %d %s, want 413 naming body", p, len(big), r.StatusCode, body)
		}
	}
	none(t, got, "bodies over the bounds")
}
