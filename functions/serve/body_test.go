package serve

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waiter reads the body when asked, then waits wait before answering, as a read
// waiting for minSeq does.
type waiter struct{ wait time.Duration }

func (h waiter) Handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/read" {
		if _, err := ReadBody(w, r); err != nil {
			Error(w, r, slog.Default(), err)
			return
		}
	}
	select {
	case <-time.After(h.wait):
		io.WriteString(w, "done")
	case <-r.Context().Done():
		// The connection's context ended: the client gets nothing.
	}
}

// bodyTimeout is the runtime's configuration with BODY_TIMEOUT set to d.
func bodyTimeout(d time.Duration) Config {
	c := DefaultConfig()
	c.BodyTimeout = d
	return c
}

func TestUnreadSlowBodyIsCutAtTheDeadline(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{}, bodyTimeout(300*time.Millisecond)))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte of body every 50 ms, forever
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := io.WriteString(c, "1\r\na\r\n"); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The server closing with the client's bytes unread shows as a reset, not an EOF;
	// both are the connection ending. Only the read deadline means it was held.
	if _, err := io.ReadAll(bufio.NewReader(c)); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if got := time.Since(start); got > 2*time.Second {
		t.Errorf("the server held the connection %s, want about BODY_TIMEOUT (300ms)", got)
	}
}

func TestWaitAfterTheBodyIsNotCut(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{wait: 600 * time.Millisecond}, bodyTimeout(200*time.Millisecond)))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/read", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got, want := string(b), "done"; resp.StatusCode != 200 || got != want {
		t.Errorf("got %d %q, want 200 %q: a handler that waits after reading its body must not be cut by the body deadline", resp.StatusCode, got, want)
	}
}

// raw sends request as it is to srv and reads the answer.
func raw(t *testing.T, srv *httptest.Server, request string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, request)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestStalledBodyIsRefusedWith408(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{}, bodyTimeout(200*time.Millisecond)))
	defer srv.Close()
	resp := raw(t, srv, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
	b, _ := io.ReadAll(resp.Body)
	// The message names the configured value: the setting reached the request.
	if want := `{"error":"body not received within 200ms (BODY_TIMEOUT)","field":"body","code":"timeout"}`; resp.StatusCode != http.StatusRequestTimeout || strings.TrimSpace(string(b)) != want {
		t.Errorf("got %d %s, want 408 %s", resp.StatusCode, b, want)
	}
}

// TestDeclaredOversizedBodyIsRefusedAtOnce: a Content-Length over the limit is
// answered with 413 before any of the body arrives, not after BODY_TIMEOUT (ten
// minutes here, far beyond the 5 s raw waits for an answer).
func TestDeclaredOversizedBodyIsRefusedAtOnce(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{}, bodyTimeout(10*time.Minute)))
	defer srv.Close()
	for _, path := range []string{"/read", "/x", "/health/readiness"} {
		resp := raw(t, srv, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\n{")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"code":"too_large"`) || !resp.Close {
			t.Errorf("POST %s with Content-Length 100 GB: %d %s (close %v), want 413 too_large and the connection closed", path, resp.StatusCode, b, resp.Close)
		}
	}
	resp := raw(t, srv, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a body within the limit: %d, want it read", resp.StatusCode)
	}
}

func TestDotSegmentsAreRefusedAsJSON(t *testing.T) {
	srv := httptest.NewServer(Mux(waiter{}, DefaultConfig()))
	defer srv.Close()
	for _, p := range []string{"/records/../metrics", "/a/./b", "//x", "/records//x"} {
		resp := raw(t, srv, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"field":"path"`) {
			t.Errorf("GET %s: %d %s, want a JSON 400 naming the path", p, resp.StatusCode, b)
		}
	}
	for _, p := range []string{"/", "/records", "/records/", "/records/abc"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadRequest {
			t.Errorf("GET %s: 400, want it passed to the function", p)
		}
	}
}
