package browser

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

var update = flag.Bool("update", false, "write the page's screenshot to ui/screenshot.png for the README")

// startStack starts the whole stack, giving each service 20 s to be ready.
func startStack(t *testing.T, opts testenv.StackOptions) *testenv.Stack {
	t.Helper()
	opts.Ready = 20 * time.Second
	return testenv.StartStack(t, opts)
}

// browser is one headless Chromium tab that records every request the page makes
// and every script error or console error it reports.
type browser struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	problems []string
	// sent are the requests by id: method and URL, then the headers as sent.
	sent map[network.RequestID]*sentRequest
}

type sentRequest struct {
	method, url string
	headers     network.Headers
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(testenv.ChromiumOptions(t), chromedp.WindowSize(1200, 820))...)
	b := &browser{t: t, sent: map[network.RequestID]*sentRequest{}}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		sent := func(id network.RequestID) *sentRequest {
			if b.sent[id] == nil {
				b.sent[id] = &sentRequest{}
			}
			return b.sent[id]
		}
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
			r := sent(e.RequestID)
			r.method, r.url = e.Request.Method, e.Request.URL
		case *network.EventRequestWillBeSentExtraInfo:
			sent(e.RequestID).headers = e.Headers
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			// The page's own 4xx answers are logged by the network source; they
			// are expected. Anything else at error level (CSP, script) is not.
			if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
				b.problems = append(b.problems, string(e.Entry.Source)+": "+e.Entry.Text)
			}
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b.ctx = ctx
	return b
}

// do runs actions with a bound, so a page that never reacts fails instead of hangs.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor waits until the JavaScript expression is truthy.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	b.do(what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, t)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w (page says: %s)", expr, err, b.statusLines())
		}
		return nil
	}))
}

func (b *browser) statusLines() string { return testenv.PageStatus(b.ctx) }

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// save fills the left pane, presses Save and returns the seq the page reports.
func (b *browser) save(typ, text string) int64 {
	b.t.Helper()
	b.do("fill and save",
		testenv.SetValue("add-type", typ),
		testenv.SetValue("add-text", ""),
		chromedp.SendKeys(chromedp.ID("add-text"), text),
		chromedp.Click(chromedp.ID("save")),
	)
	b.waitFor("the saved seq", `/seq \d+/.test(document.getElementById('saved').textContent) && document.getElementById('replica').textContent !== ''`)
	saved := eval[string](b, `document.getElementById('saved').textContent`)
	m := regexp.MustCompile(`seq (\d+)`).FindStringSubmatch(saved)
	seq, _ := strconv.ParseInt(m[1], 10, 64)
	return seq
}

// search fills the right pane, submits with Enter from the words box (the keyboard
// path) and waits for the answer.
func (b *browser) search(typ, words, limit string) {
	b.t.Helper()
	b.do("fill the query",
		testenv.SetValue("q-type", typ),
		testenv.SetValue("q-limit", limit),
		testenv.SetValue("q-words", ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('query-status').textContent = ''`),
		chromedp.SendKeys(chromedp.ID("q-words"), words+"\r"),
	)
	b.waitFor("the search answer", `/records?, newest first|No records/.test(document.getElementById('query-status').textContent) || !document.getElementById('query-error').hidden`)
}

type shownRecord struct {
	Type string `json:"type"`
	Seq  string `json:"seq"`
	Text string `json:"text"`
	When string `json:"when"`
}

func (b *browser) results() []shownRecord {
	b.t.Helper()
	return eval[[]shownRecord](b, `Array.from(document.querySelectorAll('#results li')).map(li => ({
		type: li.querySelector('.tag').textContent,
		seq: li.querySelector('.seq').textContent,
		text: li.querySelector('.text').textContent,
		when: li.querySelector('time').getAttribute('datetime'),
	}))`)
}

// setValue sets a control's value as a user's choice would, with its input and
// change events.
func nonce(t *testing.T) string {
	t.Helper()
	var b [5]byte
	rand.Read(b[:])
	return "n" + hex.EncodeToString(b[:])
}

// TestBrowser drives the page in headless Chromium against the real stack: save in
// the left pane, find it in the right pane, markup stays text, a blank save names
// the field, read-your-writes and paging, phone width, and no other origin.
func TestBrowser(t *testing.T) {
	testenv.Chromium(t)
	s := startStack(t, testenv.StackOptions{Env: []string{"RECORD_TYPES=bp,cmt,rvw,news", "RECORD_TYPE_LABELS=news=News"}})
	origin := s.Page.URL()
	b := newBrowser(t)

	// The first Run starts the browser, so it gets no deadline of its own.
	if err := chromedp.Do(b.ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	b.waitFor("the first query on load", `document.getElementById('query-status').textContent.endsWith('.')`)

	// Both type lists come from the UI service's RECORD_TYPES and labels.
	b.waitFor("the type lists", `document.getElementById('add-type').options.length > 0`)
	for id, want := range map[string]string{
		"add-type": "bp=Blog post|cmt=Comment|rvw=Review|news=News",
		"q-type":   "=All|bp=Blog post|cmt=Comment|rvw=Review|news=News",
	} {
		got := eval[string](b, `Array.from(document.getElementById('`+id+`').options).map(o => o.value + '=' + o.textContent).join('|')`)
		if got != want {
			t.Errorf("%s offers %q, want %q", id, got, want)
		}
	}

	// Save in the left pane, find it in the right pane.
	// The stack is fresh, so plain words find exactly the records of this test.
	text := "Knative scales this blog post to zero"
	seq := b.save("bp", text)
	if seq < 1 {
		t.Fatalf("got seq %d, want a positive seq", seq)
	}
	replica := eval[string](b, `document.getElementById('replica').textContent`)
	// On a Redis Cluster no answer has one seq (a partition has its own): the line
	// names no seq there.
	if !strings.Contains(replica, "replica") || (!testenv.OnCluster() && !regexp.MustCompile(`seq \d+`).MatchString(replica)) {
		t.Errorf("got replica line %q, want it to say what the replica has, with its seq", replica)
	}
	b.search("bp", "scales zero", "25")
	got := b.results()
	if len(got) != 1 || got[0].Text != text || got[0].Type != "Blog post" || got[0].Seq != fmt.Sprintf("seq %d", seq) || got[0].When == "" {
		t.Fatalf("got results %+v, want the one Blog post %q with seq %d and a time", got, text, seq)
	}

	// Markup in a record is shown as the very characters typed.
	payload := `<img src=x onerror=window.__pwned=1>`
	b.save("cmt", payload)
	b.search("", "img onerror", "25")
	got = b.results()
	if len(got) != 1 || got[0].Text != payload || got[0].Type != "Comment" {
		t.Fatalf("got results %+v, want the comment shown as the literal text %q", got, payload)
	}
	if n := eval[int](b, `document.querySelectorAll('img').length`); n != 0 {
		t.Errorf("got %d img elements, want 0: record text became markup", n)
	}
	if p := eval[string](b, `typeof window.__pwned`); p != "undefined" {
		t.Errorf("got typeof window.__pwned %q, want undefined", p)
	}

	// A blank save: the function's message, naming the field, on the field.
	b.do("blank save",
		testenv.SetValue("add-text", "   "),
		chromedp.Click(chromedp.ID("save")),
	)
	b.waitFor("the error", `!document.getElementById('add-error').hidden`)
	msg := eval[string](b, `document.getElementById('add-error').textContent`)
	if !strings.Contains(msg, `"text"`) || !strings.Contains(msg, "text is required") {
		t.Errorf("got error %q, want the function's message naming the field text", msg)
	}
	invalid := eval[[]string](b, `[document.getElementById('add-text').getAttribute('aria-invalid'), document.activeElement.id]`)
	if invalid[0] != "true" || invalid[1] != "add-text" {
		t.Errorf("got aria-invalid %q and focus on %q, want true and add-text", invalid[0], invalid[1])
	}

	// A few records of each kind, then the screenshot of the two panes.
	b.save("rvw", "Five stars: reads come from the replica, writes go to the master.")
	b.save("cmt", "Does the read side see my write at once? Tick \"Read your writes\".")
	last := b.save("bp", "CQRS on Knative: two functions, one Redis master, one replica.")
	b.search("", "", "25")
	if got := b.results(); len(got) != 5 || got[0].Seq != fmt.Sprintf("seq %d", last) {
		t.Errorf("got %d results starting %+v, want the 5 records newest first", len(got), got)
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil || img.Bounds().Dx() != 1200 {
		t.Fatalf("got a screenshot of %v (%v), want a PNG 1200 pixels wide", img.Bounds(), err)
	}
	if *update {
		path := filepath.Join(moduleRoot(t), "ui", "screenshot.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	// Read your writes: the next search sends the token of the last save.
	b.do("tick read your writes", chromedp.Click(chromedp.ID("q-ryw")))
	b.search("", "", "25")
	status := eval[string](b, `document.getElementById('query-status').textContent`)
	if want := fmt.Sprintf("waited for your last save (seq %d)", last); !strings.Contains(status, want) {
		t.Errorf("got status %q, want it to contain %q", status, want)
	}
	if tok := eval[string](b, `String(sessionStorage.getItem('cqrs.token'))`); tok == "null" || !b.requested("token="+url.QueryEscape(tok)) {
		t.Errorf("no request carried the saved token %q; requests: %v", tok, b.urls())
	}
	b.do("untick read your writes", chromedp.Click(chromedp.ID("q-ryw")))

	// Load more follows nextCursor: 27 records through the original /add.
	bulk := nonce(t)
	for i := 1; i <= 27; i++ {
		resp, body := post(t, origin+"/add", fmt.Sprintf(`{"d_type":"rvw","data":"bulk %s %d"}`, bulk, i))
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"success":true}` {
			t.Fatalf("POST /add: got %d %s, want 200 {\"success\":true}", resp.StatusCode, body)
		}
	}
	b.search("rvw", bulk, "25")
	if n := len(b.results()); n != 25 {
		t.Fatalf("got %d results, want the first 25", n)
	}
	b.do("load more", chromedp.Click(chromedp.ID("more")))
	b.waitFor("the second page", `document.querySelectorAll('#results li').length === 27 && document.getElementById('more').hidden`)
	got = b.results()
	for i, r := range got {
		if want := fmt.Sprintf("bulk %s %d", bulk, 27-i); r.Text != want {
			t.Errorf("result %d: got %q, want %q (newest first across pages)", i, r.Text, want)
		}
	}

	// A type that only the configuration names: saved and found like the others.
	newsText := "News " + nonce(t) + " from a configured type"
	newsSeq := b.save("news", newsText)
	saved := eval[string](b, `document.getElementById('saved').textContent`)
	if !strings.Contains(saved, "Saved News as seq") {
		t.Errorf("got %q, want the saved line to name the type by its label News", saved)
	}
	b.search("news", "", "25")
	if got := b.results(); len(got) != 1 || got[0].Text != newsText || got[0].Type != "News" || got[0].Seq != fmt.Sprintf("seq %d", newsSeq) {
		t.Errorf("searching News: got %+v, want the one News record %q", got, newsText)
	}

	// The page's saves went out as a browser sends them from the page itself, and
	// passed the UI's cross-site checks with those headers.
	posts := 0
	for _, r := range b.sentRequests() {
		if r.method != http.MethodPost || r.url != origin+"/api/records" {
			continue
		}
		posts++
		if o, site := header(r.headers, "Origin"), header(r.headers, "Sec-Fetch-Site"); o != origin || site != "same-origin" {
			t.Errorf("the page's save carried Origin %q and Sec-Fetch-Site %q, want %q and same-origin", o, site, origin)
		}
		if ct := header(r.headers, "Content-Type"); ct != "application/json" {
			t.Errorf("the page's save carried Content-Type %q, want application/json", ct)
		}
	}
	if posts < 6 {
		t.Errorf("saw %d saves with their headers, want the page's 6 and more", posts)
	}

	// Phone width: the panes stack and nothing scrolls sideways.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844))
	layout := eval[[]float64](b, `[document.getElementById('add-pane').getBoundingClientRect().bottom,
		document.getElementById('query-pane').getBoundingClientRect().top,
		document.documentElement.scrollWidth]`)
	if layout[1] < layout[0] || layout[2] > 390 {
		t.Errorf("at 390 px: add pane ends at %v, query pane starts at %v, page is %v wide; want stacked panes and no sideways scroll", layout[0], layout[1], layout[2])
	}

	// Every request the page made went to the UI's own origin.
	urls := b.urls()
	if len(urls) < 10 {
		t.Errorf("saw only %d requests, want the page's loads and calls: %v", len(urls), urls)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, origin+"/") {
			t.Errorf("the page requested %s, outside its origin %s", u, origin)
		}
	}
	b.mu.Lock()
	problems := append([]string(nil), b.problems...)
	b.mu.Unlock()
	for _, p := range problems {
		t.Errorf("page reported %s", p)
	}

	crossSiteWrites(t, b, s)
}

// evilPage is a page of another site that tries to write through the UI: a fetch
// without CORS (text/plain, the JSON in the body), a JSON fetch (which needs a CORS
// preflight), a JSON blob without CORS, and last a plain form post to /add.
const evilPage = `<!doctype html><html><body>
<form id="f" method="POST" action="%[1]s/add"><input name="d_type" value="bp"><input name="data" value="csrf form %[2]s"></form>
<script>
window.__results = [];
(async () => {
  const ui = '%[1]s', word = '%[2]s';
  const tries = [
    ['nocors-text', ui + '/api/records', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({type: 'bp', text: 'csrf text ' + word})}],
    ['cors-json', ui + '/api/records', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({type: 'bp', text: 'csrf json ' + word})}],
    ['nocors-blob', ui + '/add', {method: 'POST', mode: 'no-cors', body: new Blob([JSON.stringify({d_type: 'bp', data: 'csrf blob ' + word})], {type: 'application/json'})}],
  ];
  for (const [name, url, opts] of tries) {
    try { const r = await fetch(url, opts); window.__results.push(name + ':' + r.type + ':' + r.status); }
    catch (e) { window.__results.push(name + ':refused'); }
  }
  window.__done = true;
})();
</script></body></html>`

// crossSiteWrites opens a page of another site (localhost is another site than
// 127.0.0.1) that tries to store records through the UI, and checks that the
// store holds no more records: the UI refused every attempt.
func crossSiteWrites(t *testing.T, b *browser, s *testenv.Stack) {
	t.Helper()
	word := nonce(t)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, evilPage, s.Page.URL(), word)
	}))
	t.Cleanup(evil.Close)
	before := s.Backend.Records(t)
	b.do("open the other site", chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)+"/"))
	b.waitFor("the other site's fetches", `window.__done === true`)
	results := eval[[]string](b, `window.__results`)
	t.Logf("the other site's attempts: %v", results)
	for _, r := range results {
		// An opaque answer (no-cors) hides the UI's 403/415 from the other site;
		// a JSON fetch fails at its preflight.
		if !strings.HasSuffix(r, ":opaque:0") && !strings.HasSuffix(r, ":refused") {
			t.Errorf("the other site's attempt %s got a readable answer", r)
		}
	}
	b.do("submit the other site's form", chromedp.Evaluate[chromedp.Void](`document.getElementById('f').submit()`))
	// The form navigates away, which ends any poll running in the old page: poll
	// from here, through the navigation.
	answer := `location.href === '` + s.Page.URL() + `/add' && document.body.textContent.includes('cross-site request refused')`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](answer))
		cancel()
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the UI did not refuse the other site's form: %s is false (%v)", answer, err)
		}
	}
	if after := s.Backend.Records(t); after != before {
		t.Errorf("the store went from %d to %d records while another site tried to write (%v)", before, after, results)
	}
}

// header reads a header of a request as sent, whatever its case.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

func (b *browser) sentRequests() []sentRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sentRequest
	for _, r := range b.sent {
		out = append(out, *r)
	}
	return out
}

// TestOriginalEndpoints calls the original sample's POST /add and POST /search on
// the UI and checks, on the read function directly, that they reached the real
// functions.
func TestOriginalEndpoints(t *testing.T) {
	s := startStack(t, testenv.StackOptions{})
	word := nonce(t)
	for i := 1; i <= 3; i++ {
		resp, body := post(t, s.Page.URL()+"/add", fmt.Sprintf(`{"d_type":"cmt","data":"compat %s %d"}`, word, i))
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"success":true}` {
			t.Fatalf("POST /add: got %d %s, want 200 {\"success\":true}", resp.StatusCode, body)
		}
	}
	resp, body := post(t, s.Page.URL()+"/add", `{"d_type":"cmt","data":"  "}`)
	var e struct{ Error, Field string }
	json.Unmarshal([]byte(body), &e)
	if resp.StatusCode != http.StatusBadRequest || e.Error != "text is required" || e.Field != "data" {
		t.Errorf("blank /add: got %d %s, want 400 with the write function's message and field data", resp.StatusCode, body)
	}
	resp, body = post(t, s.Page.URL()+"/add", `{"d_type":"poem","data":"x"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"d_type"`) {
		t.Errorf("unknown type /add: got %d %s, want 400 naming d_type", resp.StatusCode, body)
	}

	// The read function itself has them, newest first.
	r, err := http.Get(s.Read.URL() + "/records?q=" + url.QueryEscape(word))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Records []struct{ Text string } `json:"records"`
	}
	json.NewDecoder(r.Body).Decode(&page)
	r.Body.Close()
	if len(page.Records) != 3 || page.Records[0].Text != "compat "+word+" 3" {
		t.Fatalf("read function has %+v, want the 3 records added through /add, newest first", page.Records)
	}

	resp, body = post(t, s.Page.URL()+"/search", `{"sd_type":"cmt","max_count":"25"}`)
	var texts []string
	if err := json.Unmarshal([]byte(body), &texts); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /search: got %d %s, want 200 and a JSON list of texts", resp.StatusCode, body)
	}
	want := []string{"compat " + word + " 3", "compat " + word + " 2", "compat " + word + " 1"}
	if len(texts) != 3 || strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("POST /search: got %q, want %q", texts, want)
	}
	resp, body = post(t, s.Page.URL()+"/search", `{"sd_type":"cmt","max_count":1}`)
	if err := json.Unmarshal([]byte(body), &texts); err != nil || len(texts) != 1 || texts[0] != want[0] {
		t.Errorf("POST /search max_count 1: got %d %s, want [%q]", resp.StatusCode, body, want[0])
	}
}

func (b *browser) urls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func (b *browser) requested(part string) bool {
	for _, u := range b.urls() {
		if strings.Contains(u, part) {
			return true
		}
	}
	return false
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestUIConfigErrors starts the built UI with bad variables: it stops at once with
// one line naming the variable.
func TestUIConfigErrors(t *testing.T) {
	bin := testenv.Build(t, "./functions/cmd/cqrs-ui")
	tests := []struct {
		env      string
		wantLine string
	}{
		{"PROXY_TIMEOUT=later", `cqrs-ui: configuration: PROXY_TIMEOUT="later": not a valid time.Duration`},
		{"WRITE_URL=cqrs-write:80", `cqrs-ui: configuration: WRITE_URL="cqrs-write:80": must be an absolute http or https URL`},
		{"READ_URL=ftp://cqrs-read", `cqrs-ui: configuration: READ_URL="ftp://cqrs-read": must be an absolute http or https URL`},
	}
	for _, tt := range tests {
		p := testenv.Start(t, bin, tt.env)
		code := p.Wait(10 * time.Second)
		out := strings.TrimSpace(p.Output())
		if code != 2 || !strings.HasPrefix(out, tt.wantLine) || strings.Contains(out, "\n") {
			t.Errorf("%s: got exit %d and %q, want exit 2 and one line starting %q", tt.env, code, out, tt.wantLine)
		}
	}
}

// lossyFront stands between the UI and the write function and loses the answers to
// creates as its script says, the way a dropped connection or a Redis that stalls
// after the create script was sent would. It records each create's
// Idempotency-Key.
type lossyFront struct {
	target string
	proxy  *httputil.ReverseProxy
	mu     sync.Mutex
	script []string // one step per POST /records: "store-then-drop", "unknown"; then "forward"
	keys   []string
}

func newLossyFront(t *testing.T, writeURL string, script ...string) *lossyFront {
	t.Helper()
	u, err := url.Parse(writeURL)
	if err != nil {
		t.Fatal(err)
	}
	return &lossyFront{target: writeURL, proxy: httputil.NewSingleHostReverseProxy(u), script: script}
}

func (f *lossyFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/records" {
		f.proxy.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	step := "forward"
	if len(f.script) > 0 {
		step, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	switch step {
	case "store-then-drop":
		// The write function stores the record; its answer never arrives.
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(http.MethodPost, f.target+"/records", bytes.NewReader(body))
		req.Header = r.Header.Clone()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	case "unknown":
		// What the write function answers when Redis took the script and went silent.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"outcome unknown; retry with the same Idempotency-Key","code":"outcome_unknown"}`+"\n")
	default:
		f.proxy.ServeHTTP(w, r)
	}
}

func (f *lossyFront) sentKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

// TestBrowserSaveWithUnknownOutcome: a save whose answer is lost is retried with
// the same Idempotency-Key, once by the page and then by the user pressing Save
// again, and the record is stored exactly once; the next record gets a new key.
func TestBrowserSaveWithUnknownOutcome(t *testing.T) {
	testenv.Chromium(t)
	var front *lossyFront
	s := startStack(t, testenv.StackOptions{Front: func(writeURL string) string {
		front = newLossyFront(t, writeURL, "store-then-drop", "unknown")
		srv := httptest.NewServer(front)
		t.Cleanup(srv.Close)
		return srv.URL
	}})
	b := newBrowser(t)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.Page.URL()+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	b.waitFor("the type list", `document.getElementById('add-type').options.length > 0`)

	// First attempt: stored, answer lost (the UI answers 502). The page retries at
	// once with the same key and gets "outcome unknown" (503), and says to press
	// Save again.
	word := nonce(t)
	text := "saved once " + word
	b.do("fill and save", testenv.SetValue("add-type", "cmt"), chromedp.SendKeys(chromedp.ID("add-text"), text), chromedp.Click(chromedp.ID("save")))
	b.waitFor("the unknown outcome", `!document.getElementById('add-error').hidden`)
	msg := eval[string](b, `document.getElementById('add-error').textContent`)
	if !strings.Contains(msg, "outcome unknown") || !strings.Contains(msg, "press Save again") {
		t.Errorf("got error %q, want the function's outcome unknown and the advice to press Save again", msg)
	}
	if got := eval[string](b, `document.getElementById('add-text').value`); got != text {
		t.Errorf("the text box holds %q after the unknown outcome, want the text kept for the retry", got)
	}

	// The user presses Save again: the same key, and the write function answers
	// with the record the first attempt stored.
	b.do("save again", chromedp.Click(chromedp.ID("save")))
	b.waitFor("the saved seq", `/seq \d+/.test(document.getElementById('saved').textContent) && document.getElementById('replica').textContent !== ''`)
	if saved := eval[string](b, `document.getElementById('saved').textContent`); !strings.Contains(saved, "the first attempt had stored it") {
		t.Errorf("got %q, want the page to say the retry found the stored record", saved)
	}
	keys := front.sentKeys()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("the write side got Idempotency-Keys %q, want the same key three times", keys)
	}
	if n := countRecords(t, s, word); n != 1 {
		t.Errorf("the store holds %d records with %q, want exactly 1", n, word)
	}

	// The next record is a new command with a new key.
	b.save("cmt", "another "+word)
	keys = front.sentKeys()
	if len(keys) != 4 || keys[3] == keys[0] || keys[3] == "" {
		t.Errorf("the next save sent Idempotency-Key %q after %q, want a new one", keys[len(keys)-1], keys[0])
	}
	if n := countRecords(t, s, word); n != 2 {
		t.Errorf("the store holds %d records with %q, want 2", n, word)
	}
}

// countRecords is how many records of the store hold word, as its masters say.
func countRecords(t *testing.T, s *testenv.Stack, word string) int {
	t.Helper()
	return s.Backend.WordRecords(t, word)
}

// TestBrowserForgetsTokenOfResetStore: after the store is emptied (as a restart with
// an empty Redis does), the token the page kept from an earlier save is of a history
// that is gone: the read side refuses it as a reset (410 store_reset), the page
// forgets it, searches again without it, and stops sending it. A save into the new
// store gives a new token, waited for again.
func TestBrowserForgetsTokenOfResetStore(t *testing.T) {
	testenv.Chromium(t)
	s := startStack(t, testenv.StackOptions{Env: []string{"READ_MAX_WAIT=1500ms"}})
	b := newBrowser(t)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.Page.URL()+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	b.waitFor("the first query on load", `document.getElementById('query-status').textContent.endsWith('.')`)
	b.save("bp", "one")
	b.save("bp", "two")
	b.save("bp", "three")
	old := eval[string](b, `String(sessionStorage.getItem('cqrs.token'))`)
	if old == "null" || old == "" {
		t.Fatalf("the page kept no token after saving")
	}

	// Empty the store; the replicas follow.
	s.Backend.Flush(t)

	b.do("tick read your writes", chromedp.Click(chromedp.ID("q-ryw")))
	b.search("", "", "25")
	status := eval[string](b, `document.getElementById('query-status').textContent`)
	if !strings.Contains(status, "the store was reset since your last save") || !strings.HasPrefix(status, "No records") {
		t.Errorf("got status %q, want no records and a note that the store was reset (page: %s)", status, b.statusLines())
	}
	if v := eval[string](b, `String(sessionStorage.getItem('cqrs.token'))`); v != "null" {
		t.Errorf("sessionStorage still holds the token %s", v)
	}

	// It is not sent again.
	sent := b.count("token=")
	b.search("", "", "25")
	if n := b.count("token="); n != sent {
		t.Errorf("a later search sent a token again (%d requests with one, want %d): %v", n, sent, b.urls())
	}
	if status := eval[string](b, `document.getElementById('query-status').textContent`); strings.Contains(status, "waited") {
		t.Errorf("got status %q, want no read-your-writes wait", status)
	}

	// A save into the new store gives a new token, waited for again.
	fresh := b.save("bp", "after the reset")
	if fresh != 1 {
		t.Errorf("the first save after the reset got seq %d, want 1", fresh)
	}
	if tok := eval[string](b, `String(sessionStorage.getItem('cqrs.token'))`); tok == "null" || tok == old {
		t.Errorf("token after the reset = %q, want a new one (old %q)", tok, old)
	}
	b.search("", "", "25")
	if status := eval[string](b, `document.getElementById('query-status').textContent`); !strings.Contains(status, fmt.Sprintf("waited for your last save (seq %d)", fresh)) {
		t.Errorf("got status %q, want read your writes to wait for the save of seq %d", status, fresh)
	}
}

// count is how many requests the page made whose URL holds part.
func (b *browser) count(part string) int {
	n := 0
	for _, u := range b.urls() {
		if strings.Contains(u, part) {
			n++
		}
	}
	return n
}
