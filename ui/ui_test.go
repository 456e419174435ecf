package ui

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// seen is what a stand-in function received.
type seen struct {
	method, path, query string
	header              http.Header
	body                string
}

// backend is an httptest server standing in for a function: it records each
// request and answers with reply.
func backend(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, chan seen) {
	t.Helper()
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)}
		reply(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// answer is a stand-in function's reply: status, header (Content-Type is JSON unless
// header names another) and body.
func answer(status int, header map[string]string, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// TestMain keeps the UI's per-request logs out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func newUI(t *testing.T, writeURL, readURL string, timeout time.Duration) *httptest.Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WriteURL, cfg.ReadURL, cfg.ProxyTimeout = writeURL, readURL, timeout
	return newUIWith(t, cfg)
}

// newUIWith serves a UI with cfg as the runtime serves it (serve.Mux).
func newUIWith(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	return newUIRuntime(t, cfg, serve.DefaultConfig())
}

// newUIRuntime is newUIWith with the runtime's settings rc.
func newUIRuntime(t *testing.T, cfg Config, rc serve.Config) *httptest.Server {
	t.Helper()
	u := NewWithConfig(cfg)
	if err := u.Start(context.Background(), nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(serve.Mux(u, rc))
	t.Cleanup(func() { srv.Close(); u.Stop(context.Background()) })
	return srv
}

// closedURL is a loopback URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func do(t *testing.T, method, url, contentType, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func next(t *testing.T, c chan seen) seen {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the function got no request")
		return seen{}
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // prefix of the error; "" for none
	}{
		{"defaults", nil, ""},
		{"bad port", map[string]string{"PORT": "http"}, `PORT="http"`},
		{"port out of range", map[string]string{"PORT": "70000"}, "PORT=70000"},
		{"relative write url", map[string]string{"WRITE_URL": "cqrs-write"}, `WRITE_URL="cqrs-write"`},
		{"read url with query", map[string]string{"READ_URL": "http://r/?x=1"}, `READ_URL="http://r/?x=1"`},
		{"bad timeout", map[string]string{"PROXY_TIMEOUT": "soon"}, `PROXY_TIMEOUT="soon"`},
		{"zero timeout", map[string]string{"PROXY_TIMEOUT": "0s"}, "PROXY_TIMEOUT=0s"},
		{"timeout under 1ms", map[string]string{"PROXY_TIMEOUT": "999us"}, "PROXY_TIMEOUT=999µs"},
		{"type with a capital", map[string]string{"RECORD_TYPES": "bp,News"}, `RECORD_TYPES: "News" is not a type name`},
		{"empty type", map[string]string{"RECORD_TYPES": "bp,,cmt"}, `RECORD_TYPES: "" is not a type name`},
		{"type twice", map[string]string{"RECORD_TYPES": "bp,cmt,bp"}, `RECORD_TYPES: "bp" is given twice`},
		{"type too long", map[string]string{"RECORD_TYPES": strings.Repeat("t", 33)}, `RECORD_TYPES: "ttt`},
		{"label without =", map[string]string{"RECORD_TYPE_LABELS": "bp:Blog"}, `RECORD_TYPE_LABELS="bp:Blog": "bp:Blog" is not name=label`},
		{"empty label", map[string]string{"RECORD_TYPE_LABELS": "bp= "}, `RECORD_TYPE_LABELS="bp= ": the label of bp must be 1 to 64 characters`},
		{"label of an unknown type", map[string]string{"RECORD_TYPE_LABELS": "news=News"}, `RECORD_TYPE_LABELS="news=News": news is not one of RECORD_TYPES (bp,cmt,rvw)`},
		{"label twice", map[string]string{"RECORD_TYPE_LABELS": "bp=A,bp=B"}, `RECORD_TYPE_LABELS="bp=A,bp=B": bp is labelled twice`},
		{"label with a control character", map[string]string{"RECORD_TYPE_LABELS": "bp=A\tB"}, `RECORD_TYPE_LABELS="bp=A\tB": the label of bp holds a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			// The process reads the runtime's variables first, then its own.
			rc, err := serve.Load(serve.DefaultConfig())
			var c Config
			if err == nil {
				c, err = serve.Load(DefaultConfig())
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if rc.Port != 8080 || c.WriteURL != "http://cqrs-write.default.svc.cluster.local" || c.ReadURL != "http://cqrs-read.default.svc.cluster.local" ||
					strings.Join(c.RecordTypes, ",") != "bp,cmt,rvw" || c.RecordTypeLabels != "" {
					t.Errorf("got %+v, want the documented defaults", c)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got error %v, want one line starting with %q", err, tt.wantErr)
			}
		})
	}
}

func TestProxyWrite(t *testing.T) {
	write, got := backend(t, answer(http.StatusCreated, map[string]string{
		"Location":                "/records/abc",
		"X-Replicated":            "false",
		"Set-Cookie":              "session=1",
		"Content-Security-Policy": "default-src *",
	}, `{"id":"abc","seq":7,"type":"bp","text":"hi"}`))
	ui := newUI(t, write.URL+"/base/", closedURL(t), 5*time.Second)

	resp, body := do(t, http.MethodPost, ui.URL+"/api/records", "application/json", `{"type":"bp","text":"hi"}`,
		map[string]string{"Idempotency-Key": "k1", "Cookie": "secret=1"})
	in := next(t, got)

	if in.method != http.MethodPost || in.path != "/base/records" || in.body != `{"type":"bp","text":"hi"}` {
		t.Errorf("function got %s %s %q, want POST /base/records with the body", in.method, in.path, in.body)
	}
	if k := in.header.Get("Idempotency-Key"); k != "k1" {
		t.Errorf("function got Idempotency-Key %q, want k1", k)
	}
	if c := in.header.Get("Cookie"); c != "" {
		t.Errorf("function got Cookie %q, want none: the page's cookies are not the function's", c)
	}
	if resp.StatusCode != http.StatusCreated || body != `{"id":"abc","seq":7,"type":"bp","text":"hi"}` {
		t.Errorf("got %d %q, want the function's 201 and body", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Location":                "/api/records/abc",
		"X-Replicated":            "false",
		"Set-Cookie":              "",
		"Content-Security-Policy": ContentSecurityPolicy,
	} {
		if got := strings.Join(resp.Header.Values(k), ","); got != want {
			t.Errorf("got %s %q, want %q", k, got, want)
		}
	}
}

func TestProxyRead(t *testing.T) {
	read, got := backend(t, answer(http.StatusOK,
		map[string]string{"X-Replica-Seq": "41", "X-Served-By": "master", "Retry-After": "1"}, `{"records":[]}`))
	ui := newUI(t, closedURL(t), read.URL, 5*time.Second)

	tests := []struct {
		path, wantPath, wantQuery string
	}{
		{"/api/records?type=bp&q=red+fox&limit=50&cursor=9&minSeq=42", "/records", "type=bp&q=red+fox&limit=50&cursor=9&minSeq=42"},
		{"/api/records/abc123", "/records/abc123", ""},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodGet, ui.URL+tt.path, "", "", map[string]string{"X-Min-Seq": "5"})
		in := next(t, got)
		if in.path != tt.wantPath || in.query != tt.wantQuery {
			t.Errorf("GET %s: function got %s?%s, want %s?%s", tt.path, in.path, in.query, tt.wantPath, tt.wantQuery)
		}
		if v := in.header.Get("X-Min-Seq"); v != "5" {
			t.Errorf("GET %s: function got X-Min-Seq %q, want 5", tt.path, v)
		}
		if resp.StatusCode != http.StatusOK || body != `{"records":[]}` {
			t.Errorf("GET %s: got %d %q, want the function's answer", tt.path, resp.StatusCode, body)
		}
		if s, b := resp.Header.Get("X-Replica-Seq"), resp.Header.Get("X-Served-By"); s != "41" || b != "master" {
			t.Errorf("GET %s: got X-Replica-Seq %q X-Served-By %q, want 41 and master", tt.path, s, b)
		}
	}
}

func TestProxyFailures(t *testing.T) {
	release := make(chan struct{})
	slow, _ := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	html, _ := backend(t, answer(http.StatusBadGateway, map[string]string{"Content-Type": "text/html"},
		"<h1>upstream connect error</h1><script>alert(1)</script>"))
	tests := []struct {
		name       string
		write      string
		method     string
		path       string
		wantStatus int
		wantError  string
	}{
		{"write unreachable", closedURL(t), http.MethodPost, "/api/records", http.StatusBadGateway, "the write function is unreachable"},
		{"read unreachable", closedURL(t), http.MethodGet, "/api/records", http.StatusBadGateway, "the read function is unreachable"},
		{"write too slow", slow.URL, http.MethodPost, "/api/records", http.StatusServiceUnavailable, "the write function did not answer within 300ms; retry shortly"},
		{"html error page", html.URL, http.MethodPost, "/api/records", http.StatusBadGateway, "the write function answered 502 Bad Gateway"},
		{"add with write unreachable", closedURL(t), http.MethodPost, "/add", http.StatusBadGateway, "the write function is unreachable"},
		{"wrong method", closedURL(t), http.MethodPut, "/api/records", http.StatusMethodNotAllowed, "method PUT not allowed; use GET, HEAD, POST"},
		{"unknown api path", closedURL(t), http.MethodGet, "/api/other", http.StatusNotFound, `no such path "/api/other"`},
		{"record path with a slash", closedURL(t), http.MethodGet, "/api/records/a/b", http.StatusNotFound, `no such path "/api/records/a/b"`},
		{"record with wrong method", closedURL(t), http.MethodDelete, "/api/records/a", http.StatusMethodNotAllowed, "method DELETE not allowed; use GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := closedURL(t)
			ui := newUI(t, tt.write, read, 300*time.Millisecond)
			start := time.Now()
			body := `{"type":"bp","text":"x"}`
			if tt.path == "/add" {
				body = `{"d_type":"bp","data":"x"}`
			}
			resp, body := do(t, tt.method, ui.URL+tt.path, "application/json", body, nil)
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s, want an answer soon after the proxy timeout", time.Since(start))
			}
			var e serve.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %q (%s), want a JSON error: %v", body, resp.Header.Get("Content-Type"), err)
			}
			if resp.StatusCode != tt.wantStatus || e.Error != tt.wantError {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, e.Error, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("got no Retry-After on 503")
			}
		})
	}
}

func TestAdd(t *testing.T) {
	write, got := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"a","seq":1,"type":"bp","text":"x"}`)
	})
	ui := newUI(t, write.URL, closedURL(t), 5*time.Second)
	tests := []struct {
		name, contentType, body, wantSent string
	}{
		{"json", "application/json", `{"d_type":"rvw","data":"five stars"}`, `{"text":"five stars","type":"rvw"}`},
		{"json with a charset", "application/json; charset=utf-8", `{"d_type":"bp","data":"a & b"}`, `{"text":"a \u0026 b","type":"bp"}`},
		{"json type of its own", "application/vnd.cqrs+json", `{"data":"plain","d_type":"cmt"}`, `{"text":"plain","type":"cmt"}`},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodPost, ui.URL+"/add", tt.contentType, tt.body, nil)
		in := next(t, got)
		if in.path != "/records" || in.body != tt.wantSent {
			t.Errorf("%s: function got %s %q, want /records %q", tt.name, in.path, in.body, tt.wantSent)
		}
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"success":true}` {
			t.Errorf("%s: got %d %q, want 200 {\"success\":true}", tt.name, resp.StatusCode, body)
		}
	}
}

func TestAddRelaysValidationError(t *testing.T) {
	write, _ := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"text is required","field":"text"}`)
	})
	ui := newUI(t, write.URL, closedURL(t), 5*time.Second)
	resp, body := do(t, http.MethodPost, ui.URL+"/add", "application/json", `{"d_type":"bp","data":" "}`, nil)
	var e serve.ErrorBody
	json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != http.StatusBadRequest || e.Error != "text is required" || e.Field != "data" {
		t.Errorf("got %d %+v, want 400 with the function's message and the old field name data", resp.StatusCode, e)
	}
}

func TestSearch(t *testing.T) {
	read, got := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("limit") == "500" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"limit must be a whole number from 1 to 100","field":"limit"}`)
			return
		}
		io.WriteString(w, `{"records":[{"id":"b","seq":2,"type":"bp","text":"second"},{"id":"a","seq":1,"type":"bp","text":"<b>first</b>"}],"nextCursor":"1"}`)
	})
	ui := newUI(t, closedURL(t), read.URL, 5*time.Second)
	tests := []struct {
		name, body, wantQuery string
		wantStatus            int
		wantBody              string
	}{
		{"number", `{"sd_type":"bp","max_count":25}`, "limit=25&type=bp", 200, `["second","<b>first</b>"]`},
		{"string from a select", `{"sd_type":"bp","max_count":"50"}`, "limit=50&type=bp", 200, `["second","<b>first</b>"]`},
		{"all types, default count", `{"sd_type":"All"}`, "limit=25", 200, `["second","<b>first</b>"]`},
		{"count the function refuses", `{"sd_type":"bp","max_count":500}`, "limit=500&type=bp", 400, `{"error":"limit must be a whole number from 1 to 100","field":"max_count"}`},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodPost, ui.URL+"/search", "application/json", tt.body, nil)
		in := next(t, got)
		if in.path != "/records" || in.query != tt.wantQuery {
			t.Errorf("%s: function got %s?%s, want /records?%s", tt.name, in.path, in.query, tt.wantQuery)
		}
		var gotBody, wantBody any
		json.Unmarshal([]byte(body), &gotBody)
		json.Unmarshal([]byte(tt.wantBody), &wantBody)
		if resp.StatusCode != tt.wantStatus || !reflect.DeepEqual(gotBody, wantBody) {
			t.Errorf("%s: got %d %s, want %d %s", tt.name, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
		}
	}
	resp, body := do(t, http.MethodPost, ui.URL+"/search", "application/json", `{"max_count":"many"}`, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"max_count"`) {
		t.Errorf("bad max_count: got %d %s, want 400 naming max_count", resp.StatusCode, body)
	}
}

func TestPage(t *testing.T) {
	ui := newUI(t, closedURL(t), closedURL(t), time.Second)
	tests := []struct {
		path, wantType, wantIn string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/static/app.js" defer></script>`},
		{"/static/app.js", "text/javascript; charset=utf-8", "textContent"},
		{"/static/style.css", "text/css; charset=utf-8", "@media"},
		{"/health/readiness", "text/plain; charset=utf-8", "ok"},
		{"/health/liveness", "text/plain; charset=utf-8", "ok"},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodGet, ui.URL+tt.path, "", "", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, tt.wantIn) {
			t.Errorf("GET %s: got %d without %q", tt.path, resp.StatusCode, tt.wantIn)
		}
		if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
			t.Errorf("GET %s: got Content-Type %q, want %q", tt.path, resp.Header.Get("Content-Type"), tt.wantType)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: got CSP %q, want %q", tt.path, got, ContentSecurityPolicy)
		}
	}
}

// TestStaticFilesStayInert reads the embedded files: the page has no inline script or
// handler (the CSP would block them) and loads nothing from another origin, and the
// script never turns strings into markup.
func TestStaticFilesStayInert(t *testing.T) {
	html, err := staticFiles.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>[^<]*</script>`).FindAll(html, -1) {
		if !regexp.MustCompile(`^<script src="/static/[a-z]+\.js"[^>]*></script>$`).Match(tag) {
			t.Errorf("index.html holds an inline or foreign script: %s", tag)
		}
	}
	for _, re := range []string{`\son[a-z]+\s*=`, `(?:src|href)\s*=\s*"(?:[a-z]+:)?//`, `\sstyle\s*=`} {
		if m := regexp.MustCompile(re).Find(html); m != nil {
			t.Errorf("index.html holds %q (pattern %s)", m, re)
		}
	}
	js, err := staticFiles.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func TestCompatBadBodies(t *testing.T) {
	ui := newUI(t, closedURL(t), closedURL(t), time.Second)
	tests := []struct {
		name, path, contentType, body string
		wantStatus                    int
		wantField                     string
	}{
		{"malformed json", "/add", "application/json", `{"d_type":`, http.StatusBadRequest, "body"},
		{"empty body", "/add", "application/json", ``, http.StatusBadRequest, "body"},
		{"data not a string", "/add", "application/json", `{"d_type":"bp","data":5}`, http.StatusBadRequest, "data"},
		{"wrong content type", "/search", "text/plain", `{"sd_type":"bp"}`, http.StatusUnsupportedMediaType, "Content-Type"},
		{"body too large", "/add", "application/json", `{"d_type":"bp","data":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "body"},
	}
	for _, tt := range tests {
		resp, body := do(t, http.MethodPost, ui.URL+tt.path, tt.contentType, tt.body, nil)
		var e serve.ErrorBody
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != tt.wantStatus || e.Field != tt.wantField || e.Error == "" {
			t.Errorf("%s: got %d %s, want %d naming %s", tt.name, resp.StatusCode, body, tt.wantStatus, tt.wantField)
		}
	}
}

// TestSearchContentTypes: /search takes JSON (any +json type, and no Content-Type at
// all) and forms; any other type is a 415 that names the media type without its
// parameters, and a header that does not parse is named whole.
func TestSearchContentTypes(t *testing.T) {
	ui := newUI(t, closedURL(t), closedURL(t), time.Second)
	for _, tt := range []struct {
		contentType, body string
		wantStatus        int
		wantInError       string
	}{
		{"", `{"sd_type":"bp"}`, http.StatusBadGateway, "read function"},
		{"application/json; charset=utf-8", `{"sd_type":"bp"}`, http.StatusBadGateway, "read function"},
		{"application/merge-patch+json", `{"sd_type":"bp"}`, http.StatusBadGateway, "read function"},
		{"application/x-www-form-urlencoded", "sd_type=bp", http.StatusBadGateway, "read function"},
		{"text/plain; charset=utf-8", `{"sd_type":"bp"}`, http.StatusUnsupportedMediaType, `content type "text/plain" is not supported`},
		{"application/json; =x", `{"sd_type":"bp"}`, http.StatusUnsupportedMediaType, `content type "application/json; =x" is not supported`},
		{"application/x-www-form-urlencoded; =x", "sd_type=bp", http.StatusUnsupportedMediaType, `"application/x-www-form-urlencoded; =x"`},
		{"no/such type", `{"sd_type":"bp"}`, http.StatusUnsupportedMediaType, `content type "no/such type" is not supported`},
	} {
		resp, body := do(t, http.MethodPost, ui.URL+"/search", tt.contentType, tt.body, nil)
		var e serve.ErrorBody
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != tt.wantStatus || !strings.Contains(e.Error, tt.wantInError) {
			t.Errorf("POST /search as %q: got %d %s, want %d with %s", tt.contentType, resp.StatusCode, body, tt.wantStatus, tt.wantInError)
		}
		if tt.wantStatus == http.StatusUnsupportedMediaType && e.Field != "Content-Type" {
			t.Errorf("POST /search as %q: got field %q, want Content-Type", tt.contentType, e.Field)
		}
	}
}

// TestProxyJoinsTheTargetPath: the function path goes after the path of WRITE_URL and
// READ_URL with one slash between them, and what that path escapes stays escaped.
func TestProxyJoinsTheTargetPath(t *testing.T) {
	uris := make(chan string, 1)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.RequestURI
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"records":[]}`)
	}))
	t.Cleanup(fn.Close)
	for _, tt := range []struct{ base, target, want string }{
		{"", "/api/records?q=a", "/records?q=a"},
		{"/", "/api/records/abc", "/records/abc"},
		{"/prefix", "/api/records", "/prefix/records"},
		{"/prefix/", "/api/records/abc?minSeq=1", "/prefix/records/abc?minSeq=1"},
		{"/pre%2Ffix", "/api/records/abc", "/pre%2Ffix/records/abc"},
		{"/pre%2Ffix/", "/api/records", "/pre%2Ffix/records"},
	} {
		ui := newUI(t, fn.URL+tt.base, fn.URL+tt.base, 5*time.Second)
		resp, body := do(t, http.MethodGet, ui.URL+tt.target, "", "", nil)
		select {
		case got := <-uris:
			if got != tt.want || resp.StatusCode != http.StatusOK {
				t.Errorf("READ_URL %s, GET %s: the function got %s (answer %d %s), want %s", fn.URL+tt.base, tt.target, got, resp.StatusCode, body, tt.want)
			}
		default:
			t.Errorf("READ_URL %s, GET %s: got %d %s and no request at the function, want %s", fn.URL+tt.base, tt.target, resp.StatusCode, body, tt.want)
		}
	}
}
