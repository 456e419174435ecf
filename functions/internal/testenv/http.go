package testenv

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Do sends method url with header h (may be nil) and body, fails the test if no
// answer comes, and returns the response with its body read and closed.
func Do(tb testing.TB, method, url string, h http.Header, body string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if h != nil {
		req.Header = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Header builds a header from name, value pairs, leaving out empty values.
func Header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			h.Set(kv[i], kv[i+1])
		}
	}
	return h
}

// Raw sends the bytes of a request as they are to addr (host:port) and reads the
// answer, giving up after 5 s: for requests no client library would send, such as a
// body that stalls.
func Raw(tb testing.TB, addr, request string) *http.Response {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		tb.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatalf("no answer to %q: %v", strings.SplitN(request, "\r\n", 2)[0], err)
	}
	return resp
}
