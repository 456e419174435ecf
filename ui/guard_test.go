package ui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// capture is a stand-in for both functions that answers every request it gets with
// 200 and a JSON body, so that a test can see exactly which requests left the UI.
func capture(t *testing.T) (string, chan seen) {
	t.Helper()
	srv, got := backend(t, answer(http.StatusOK, nil, `{"records":[]}`))
	return srv.URL, got
}

// none fails the test if the stand-in got a request.
func none(t *testing.T, got chan seen, what string) {
	t.Helper()
	select {
	case s := <-got:
		t.Errorf("%s: the function got %s %s?%s, want nothing forwarded", what, s.method, s.path, s.query)
	default:
	}
}

// raw sends a request whose target is exactly target, as written: Go's client
// sends the URL's opaque path untouched, without cleaning or re-escaping it.
func raw(t *testing.T, method, base, target, contentType, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: method, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: target}, Host: u.Host,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func errorBody(t *testing.T, resp *http.Response, body string) serve.ErrorBody {
	t.Helper()
	var e serve.ErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || resp.Header.Get("Content-Type") != "application/json" || e.Error == "" {
		t.Errorf("got %d %q (%s), want a JSON error", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	return e
}

// TestProxyRefusesSteeredPaths sends the paths and queries that could make a
// function, or an ingress in front of it, read another path or another query than
// the one the UI checked: each is a JSON 400 naming what is wrong, and the function
// (a capture server as WRITE_URL and READ_URL) never gets a request.
func TestProxyRefusesSteeredPaths(t *testing.T) {
	fn, got := capture(t)
	ui := newUI(t, fn+"/prefix", fn+"/prefix", 5*time.Second)
	tests := []struct {
		name, method, target string
		wantField            string
	}{
		{"encoded dot-dot and slash", "GET", "/api/records/..%2fmetrics", "path"},
		{"dot-dot out of a prefix", "GET", "/api/records/a%2F..%2F..%2Fmetrics", "path"},
		{"encoded slash then dot-dot", "GET", "/api/records/%2F..", "path"},
		{"encoded slash upper case", "GET", "/api/records/a%2Fb", "path"},
		{"encoded dot-dot", "GET", "/api/records/%2e%2e", "path"},
		{"encoded dot", "GET", "/api/records/%2E", "path"},
		{"encoded backslash", "GET", "/api/records/a%5c..%5cmetrics", "path"},
		{"encoded backslash upper case", "GET", "/api/records/%5C", "path"},
		{"backslash", "GET", `/api/records/a\..\metrics`, "path"},
		{"semicolon in the id", "GET", "/api/records/abc;x=1", "path"},
		{"semicolon after records", "GET", "/api/records;x", "path"},
		{"encoded semicolon", "GET", "/api/records/a%3Bb", "path"},
		{"encoded NUL", "GET", "/api/records/a%00", "path"},
		{"id that is not an id", "GET", "/api/records/caf%C3%A9", "path"},
		{"id too long", "GET", "/api/records/" + strings.Repeat("a", 65), "path"},
		{"dot-dot on a write", "POST", "/api/records/..%2f..%2fadmin", "path"},
		{"semicolon in the query", "GET", "/api/records?type=zzz;q=x", "query"},
		{"bad escape in the query", "GET", "/api/records?q=%zz", "query"},
		{"limit twice", "GET", "/api/records?limit=5&limit=6", "limit"},
		{"type twice", "GET", "/api/records?type=bp&type=cmt", "type"},
		{"minSeq twice on a record", "GET", "/api/records/abc?minSeq=1&minSeq=2", "minSeq"},
		{"malformed query on a write", "POST", "/api/records?a=%zz", "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, tt.method, ui.URL, tt.target, "application/json", `{"type":"bp","text":"x"}`, nil)
			e := errorBody(t, resp, body)
			if resp.StatusCode != http.StatusBadRequest || e.Field != tt.wantField || e.Code != fail.EINVALID {
				t.Errorf("got %d %s, want 400 naming %s", resp.StatusCode, body, tt.wantField)
			}
			if resp.Header.Get("Location") != "" {
				t.Errorf("got Location %q, want none", resp.Header.Get("Location"))
			}
			none(t, got, tt.target)
		})
	}

	// A literal empty, dot or dot-dot segment never reaches the UI's handler: the
	// runtime refuses it (no redirect to a cleaned path), and nothing is forwarded.
	for _, target := range []string{"/api/records/../metrics", "/api/records/./abc", "/api//records"} {
		resp, body := raw(t, "GET", ui.URL, target, "", "", nil)
		e := errorBody(t, resp, body)
		if resp.StatusCode != http.StatusBadRequest || e.Field != "path" || e.Code != fail.EINVALID {
			t.Errorf("GET %s: got %d %s, want 400 naming path", target, resp.StatusCode, body)
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			t.Errorf("GET %s: got Location %q, want none", target, loc)
		}
		none(t, got, target)
	}

	// The same stand-in does get what is allowed, at the path built from the
	// escaped path and with the query untouched.
	for _, tt := range []struct{ target, wantPath, wantQuery string }{
		{"/api/records/0123456789abcdef", "/prefix/records/0123456789abcdef", ""},
		{"/api/records/Some-Id_1?minSeq=3", "/prefix/records/Some-Id_1", "minSeq=3"},
		{"/api/records?q=caf%C3%A9+a%26b&type=bp&other=1&other=2", "/prefix/records", "q=caf%C3%A9+a%26b&type=bp&other=1&other=2"},
	} {
		resp, body := raw(t, "GET", ui.URL, tt.target, "", "", nil)
		in := next(t, got)
		if resp.StatusCode != http.StatusOK || in.path != tt.wantPath || in.query != tt.wantQuery {
			t.Errorf("GET %s: got %d %s, function got %s?%s, want %s?%s", tt.target, resp.StatusCode, body, in.path, in.query, tt.wantPath, tt.wantQuery)
		}
	}
}

// TestProxyNeverPassesRedirects: a function's 3xx becomes a JSON 502 that says what
// happened, without a Location, on the proxy and on the original endpoints.
func TestProxyNeverPassesRedirects(t *testing.T) {
	fn, got := backend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/records/../metrics", http.StatusTemporaryRedirect)
	})
	ui := newUI(t, fn.URL, fn.URL, 5*time.Second)
	tests := []struct{ method, path, body string }{
		{"GET", "/api/records", ""},
		{"GET", "/api/records/abc", ""},
		{"POST", "/api/records", `{"type":"bp","text":"x"}`},
		{"POST", "/add", `{"d_type":"bp","data":"x"}`},
		{"POST", "/search", `{"sd_type":"bp"}`},
	}
	for _, tt := range tests {
		resp, body := do(t, tt.method, ui.URL+tt.path, "application/json", tt.body, nil)
		e := errorBody(t, resp, body)
		if resp.StatusCode != http.StatusBadGateway || e.Code != "upstream_redirect" ||
			!strings.Contains(e.Error, "function answered 307 Temporary Redirect") || resp.Header.Get("Location") != "" {
			t.Errorf("%s %s: got %d %s Location %q, want 502 upstream_redirect and no Location", tt.method, tt.path, resp.StatusCode, body, resp.Header.Get("Location"))
		}
		next(t, got)
		none(t, got, tt.path+" (a followed redirect)")
	}
}

// TestCrossSiteWritesRefused: the UI's writing endpoints take JSON from the page's
// own origin only; a cross-site form, a body without the JSON type and a foreign
// Origin are refused before anything reaches the write function.
func TestCrossSiteWritesRefused(t *testing.T) {
	fn, got := capture(t)
	ui := newUI(t, fn, fn, 5*time.Second)
	own := ui.URL // http://127.0.0.1:port, the Origin a browser sends from the page
	const record = `{"type":"bp","text":"x"}`
	const add = `{"d_type":"bp","data":"x"}`
	tests := []struct {
		name, path, contentType, body string
		header                        map[string]string
		wantStatus                    int
	}{
		{"form to /add", "/add", "application/x-www-form-urlencoded", "d_type=bp&data=x", nil, http.StatusUnsupportedMediaType},
		{"JSON as a form to /add", "/add", "application/x-www-form-urlencoded", add, nil, http.StatusUnsupportedMediaType},
		{"cross-site form to /add", "/add", "application/x-www-form-urlencoded", "d_type=bp&data=x",
			map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"text/plain to /add", "/add", "text/plain", add, nil, http.StatusUnsupportedMediaType},
		{"no content type to /api/records", "/api/records", "", record, nil, http.StatusUnsupportedMediaType},
		{"text/plain to /api/records", "/api/records", "text/plain", record, nil, http.StatusUnsupportedMediaType},
		{"multipart to /api/records", "/api/records", "multipart/form-data; boundary=x", record, nil, http.StatusUnsupportedMediaType},
		{"foreign Origin to /api/records", "/api/records", "application/json", record,
			map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"foreign Origin to /add", "/add", "application/json", add,
			map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"sibling host Origin", "/api/records", "application/json", record,
			map[string]string{"Origin": "http://evil.127.0.0.1.sslip.io", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"same host, other port", "/api/records", "application/json", record,
			map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"null Origin", "/api/records", "application/json", record, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site alone", "/add", "application/json", add, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ui.URL+tt.path, tt.contentType, tt.body, tt.header)
			e := errorBody(t, resp, body)
			wantCode := fail.EUNSUPPORTED
			if tt.wantStatus == http.StatusForbidden {
				wantCode = fail.EFORBIDDEN
			}
			if resp.StatusCode != tt.wantStatus || e.Code != wantCode {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, wantCode)
			}
			none(t, got, tt.name)
		})
	}

	// A CORS preflight gets no permission.
	resp, body := do(t, http.MethodOptions, ui.URL+"/api/records", "", "", map[string]string{
		"Origin": "http://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	if resp.StatusCode < 400 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight: got %d %s with CORS headers %v, want a refusal without CORS headers", resp.StatusCode, body, resp.Header)
	}
	none(t, got, "preflight")

	// The page itself, a same-origin fetch, and a program without Origin are served.
	for _, h := range []map[string]string{
		{"Origin": own, "Sec-Fetch-Site": "same-origin"},
		nil, // curl
		{"Sec-Fetch-Site": "none"},
	} {
		for _, ep := range []struct{ path, body string }{{"/api/records", record}, {"/add", add}} {
			resp, body := do(t, http.MethodPost, ui.URL+ep.path, "application/json", ep.body, h)
			next(t, got)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST %s with %v: got %d %s, want it forwarded and answered", ep.path, h, resp.StatusCode, body)
			}
		}
	}
}

// TestWriteGuardOrigins: which Origin and Sec-Fetch-Site headers a write passes
// with, as net/http's CrossOriginProtection decides. Browsers send one Origin, in
// lower case, without path or user, and a truthful Sec-Fetch-Site; the cases where
// that protection is more lenient than the UI's own check before it (marked) are
// requests only a program sends, and a program is no cross-site forgery.
func TestWriteGuardOrigins(t *testing.T) {
	s := NewWithConfig(DefaultConfig())
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origins   []string
		fetchSite string
		host      string
		want      bool
	}{
		{[]string{"http://ui.example"}, "", "ui.example", true},
		{[]string{"https://ui.example"}, "", "ui.example", true},
		{[]string{"http://[::1]:8080"}, "", "[::1]:8080", true},
		{nil, "", "ui.example", true},                                                  // curl
		{nil, "same-origin", "ui.example", true},                                       // the page
		{nil, "none", "ui.example", true},                                              // typed in the address bar
		{[]string{""}, "", "ui.example", true},                                         // marked: an empty Origin is none
		{[]string{"ftp://ui.example"}, "", "ui.example", true},                         // marked: the scheme is not compared
		{[]string{"http://user@ui.example"}, "", "ui.example", true},                   // marked
		{[]string{"http://ui.example/path"}, "", "ui.example", true},                   // marked
		{[]string{"http://ui.example", "http://evil.example"}, "", "ui.example", true}, // marked: the first Origin counts
		{[]string{"http://evil.example"}, "same-origin", "ui.example", true},           // marked: the browser's word counts
		{[]string{"http://evil.example", "http://ui.example"}, "", "ui.example", false},
		{[]string{"http://UI.example:8080"}, "", "ui.example:8080", false}, // stricter: case
		{[]string{"http://ui.example:80"}, "", "ui.example", false},        // stricter: a default port
		{[]string{"https://ui.example"}, "", "ui.example:443", false},      // stricter
		{[]string{"http://ui.example"}, "same-site", "ui.example", false},  // stricter: a sibling site
		{[]string{"http://ui.example:8080"}, "", "ui.example", false},
		{[]string{"http://ui.example.evil"}, "", "ui.example", false},
		{[]string{"http://evil.example"}, "", "ui.example", false},
		{[]string{"null"}, "", "ui.example", false},
		{[]string{"ui.example"}, "", "ui.example", false},
		{nil, "cross-site", "ui.example", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "http://"+tt.host+"/api/records", strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		r.Header["Origin"] = tt.origins
		if tt.fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", tt.fetchSite)
		}
		err := s.writeGuard(r)
		if got := err == nil; got != tt.want || (err != nil && fail.Code(err) != fail.EFORBIDDEN) {
			t.Errorf("Origin %q, Sec-Fetch-Site %q, Host %q: %v, want passed %v", tt.origins, tt.fetchSite, tt.host, err, tt.want)
		}
	}
}

// TestAddDecodesStrictly: /add refuses what POST /records refuses, naming the field
// in the original's words, and sends nothing on.
func TestAddDecodesStrictly(t *testing.T) {
	fn, got := capture(t)
	ui := newUI(t, fn, fn, 5*time.Second)
	tests := []struct {
		name, body, wantField string
	}{
		{"duplicate key", `{"d_type":"bp","data":"x","data":"y"}`, "data"},
		{"duplicate key in another case", `{"d_type":"bp","D_TYPE":"cmt","data":"x"}`, "D_TYPE"},
		{"unknown field", `{"d_type":"bp","data":"x","admin":true}`, "admin"},
		{"the new API's names", `{"type":"bp","text":"x"}`, "type"},
		{"wrong type", `{"d_type":["bp"],"data":"x"}`, "d_type"},
		{"not an object", `["bp","x"]`, "body"},
		{"two objects", `{"d_type":"bp","data":"x"}{}`, "body"},
		{"not UTF-8", "{\"d_type\":\"bp\",\"data\":\"\xff\"}", "data"},
		{"lone surrogate escape", `{"d_type":"bp","data":"a\ud800b"}`, "data"},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodPost, ui.URL+"/add", "application/json", tt.body, nil)
		e := errorBody(t, resp, body)
		if resp.StatusCode != http.StatusBadRequest || e.Field != tt.wantField {
			t.Errorf("%s: got %d %s, want 400 naming %s", tt.name, resp.StatusCode, body, tt.wantField)
		}
		none(t, got, tt.name)
	}
}

// TestAddNotReplicated: a record the write function stored with fewer replica
// confirmations than asked (202) is a success for /add, marked as not replicated.
func TestAddNotReplicated(t *testing.T) {
	fn, got := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Replicated", "false")
		w.Header().Set("Location", "/records/a")
		serve.JSON(w, http.StatusAccepted, map[string]any{"id": "a", "seq": 1, "type": "bp", "text": "x", "replicated": false})
	})
	ui := newUI(t, fn.URL, closedURL(t), 5*time.Second)
	resp, body := do(t, http.MethodPost, ui.URL+"/add", "application/json", `{"d_type":"bp","data":"x"}`, map[string]string{"Idempotency-Key": "k-202"})
	in := next(t, got)
	if in.header.Get("Idempotency-Key") != "k-202" {
		t.Errorf("function got Idempotency-Key %q, want k-202", in.header.Get("Idempotency-Key"))
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"replicated":false,"success":true}` || resp.Header.Get("X-Replicated") != "false" {
		t.Errorf("got %d %s X-Replicated %q, want 200 {\"replicated\":false,\"success\":true} and X-Replicated: false",
			resp.StatusCode, body, resp.Header.Get("X-Replicated"))
	}
}

// TestOutcomeUnknownRelayed: the write function's "outcome unknown" answer reaches
// the client whole (status, code, Retry-After) through the proxy and through /add,
// so that the client knows to retry with the same key.
func TestOutcomeUnknownRelayed(t *testing.T) {
	const unknown = `{"error":"outcome unknown; retry with the same Idempotency-Key","code":"outcome_unknown"}`
	fn, got := backend(t, answer(http.StatusServiceUnavailable, map[string]string{"Retry-After": "1"}, unknown+"\n"))
	ui := newUI(t, fn.URL, closedURL(t), 5*time.Second)
	for _, ep := range []struct{ path, body string }{{"/api/records", `{"type":"bp","text":"x"}`}, {"/add", `{"d_type":"bp","data":"x"}`}} {
		resp, body := do(t, http.MethodPost, ui.URL+ep.path, "application/json", ep.body, map[string]string{"Idempotency-Key": "k-unknown"})
		if in := next(t, got); in.header.Get("Idempotency-Key") != "k-unknown" {
			t.Errorf("%s: function got Idempotency-Key %q, want k-unknown", ep.path, in.header.Get("Idempotency-Key"))
		}
		e := errorBody(t, resp, body)
		if resp.StatusCode != http.StatusServiceUnavailable || e.Code != "outcome_unknown" || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: got %d %s Retry-After %q, want 503 outcome_unknown with Retry-After", ep.path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
}

// TestTypes: the page's types come from RECORD_TYPES and RECORD_TYPE_LABELS.
func TestTypes(t *testing.T) {
	tests := []struct {
		name, types, labels, want string
	}{
		{"defaults", "", "", `{"types":[{"name":"bp","label":"Blog post"},{"name":"cmt","label":"Comment"},{"name":"rvw","label":"Review"}]}`},
		{"a new type keeps its name", "bp,cmt,rvw,news", "", `{"types":[{"name":"bp","label":"Blog post"},{"name":"cmt","label":"Comment"},{"name":"rvw","label":"Review"},{"name":"news","label":"news"}]}`},
		{"labels", "news,bp", "news=News, bp = Post = article", `{"types":[{"name":"news","label":"News"},{"name":"bp","label":"Post = article"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, map[string]string{"RECORD_TYPES": tt.types, "RECORD_TYPE_LABELS": tt.labels})
			cfg, err := serve.Load(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			cfg.WriteURL, cfg.ReadURL = closedURL(t), closedURL(t)
			ui := newUIWith(t, cfg)
			resp, body := do(t, http.MethodGet, ui.URL+"/api/types", "", "", nil)
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != tt.want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %d %s, want %s", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// setEnv sets the UI's variables for one test: those in env (an empty value
// unsets), the others unset.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range []string{"PORT", "LISTEN_ADDRESS", "WRITE_URL", "READ_URL", "PROXY_TIMEOUT", "DRAIN_TIMEOUT", "RECORD_TYPES", "RECORD_TYPE_LABELS"} {
		t.Setenv(k, "") // restored after the test
		if v := env[k]; v != "" {
			t.Setenv(k, v)
		} else {
			os.Unsetenv(k)
		}
	}
}

// TestEveryAnswerIsJSON: outside /api too, an unknown path is a JSON 404 and a
// known path with another method a JSON 405 with Allow; the page is the only HTML.
func TestEveryAnswerIsJSON(t *testing.T) {
	ui := newUI(t, closedURL(t), closedURL(t), time.Second)
	tests := []struct {
		method, path string
		wantStatus   int
		wantAllow    string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"GET", "/static/", 404, ""},
		{"GET", "/static/nope.js", 404, ""},
		{"GET", "/static/a/b.js", 404, ""},
		{"GET", "/health/other", 404, ""},
		{"GET", "/api/", 404, ""},
		{"GET", "/api/records/", 404, ""},
		{"GET", "/api/records/a/b", 404, ""},
		{"POST", "/", 405, "GET, HEAD"},
		{"DELETE", "/static/app.js", 405, "GET, HEAD"},
		{"POST", "/favicon.ico", 405, "GET, HEAD"},
		{"GET", "/add", 405, "POST"},
		{"GET", "/search", 405, "POST"},
		{"PUT", "/api/types", 405, "GET, HEAD"},
		{"PATCH", "/api/records/abc", 405, "GET, HEAD"},
		{"OPTIONS", "/api/records", 405, "GET, HEAD, POST"},
	}
	for _, tt := range tests {
		resp, body := do(t, tt.method, ui.URL+tt.path, "", "", nil)
		e := errorBody(t, resp, body)
		wantCode := fail.ENOTFOUND
		if tt.wantStatus == 405 {
			wantCode = fail.EMETHOD
		}
		if resp.StatusCode != tt.wantStatus || resp.Header.Get("Allow") != tt.wantAllow || e.Code != wantCode {
			t.Errorf("%s %s: got %d Allow %q %s, want %d Allow %q code %s", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), body, tt.wantStatus, tt.wantAllow, wantCode)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("%s %s: got CSP %q", tt.method, tt.path, got)
		}
	}
}
