package faults_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// hostile is one request that a function must refuse with a 4xx. It is sent byte
// for byte over TCP, so that nothing a client library would clean up (bare CRs in
// headers, bad escapes in paths, absurd methods) is lost on the way.
type hostile struct {
	name   string
	method string
	target string   // request target, sent as is
	header []string // "Name: value" lines, sent as is
	body   string
	raw    string // when set, the whole request, sent as is
}

func (h hostile) bytes() []byte {
	if h.raw != "" {
		return []byte(h.raw)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", h.method, h.target)
	hasType := false
	for _, l := range h.header {
		b.WriteString(l + "\r\n")
		hasType = hasType || strings.HasPrefix(strings.ToLower(l), "content-type:")
	}
	if h.body != "" || h.method == http.MethodPost {
		if !hasType && h.target == "/records" {
			b.WriteString("Content-Type: application/json\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(h.body))
	}
	b.WriteString("\r\n")
	b.WriteString(h.body)
	return b.Bytes()
}

// send writes req to addr and reads the answer; the whole exchange is bounded by
// clientTimeout. The request is written while the answer is read, because a
// function may refuse a huge body before it has all arrived.
func send(addr string, req []byte) (*http.Response, []byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(clientTimeout))
	go c.Write(req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// exchange sends h; when the server answers a path it would clean with a redirect,
// it follows that once, as a browser would, and returns the final answer.
func exchange(addr string, h hostile) (*http.Response, []byte, error) {
	resp, b, err := send(addr, h.bytes())
	if err != nil || resp.StatusCode/100 != 3 {
		return resp, b, err
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/") {
		return resp, b, fmt.Errorf("redirect to %q, outside the function", loc)
	}
	next := hostile{method: h.method, target: loc, header: h.header, body: h.body}
	return send(addr, next.bytes())
}

func jsonCreate(text string) string { return `{"type":"bp","text":` + strconv.Quote(text) + `}` }

func writeCorpus() []hostile {
	post := func(name, body string, header ...string) hostile {
		return hostile{name: name, method: http.MethodPost, target: "/records", body: body, header: header}
	}
	ce := func(name, body string, header ...string) hostile {
		return hostile{name: name, method: http.MethodPost, target: "/", body: body, header: header}
	}
	binary := []string{"ce-specversion: 1.0", "ce-id: h1", "ce-source: /hostile", "ce-type: dev.cqrs.record.create", "Content-Type: application/json"}
	without := func(attr string) []string {
		var out []string
		for _, l := range binary {
			if !strings.HasPrefix(l, attr+":") {
				out = append(out, l)
			}
		}
		return out
	}
	with := func(attr, value string) []string { return append(without(attr), attr+": "+value) }
	okData := `{"type":"bp","text":"hello"}`
	return []hostile{
		post("huge body 1 MiB", jsonCreate(strings.Repeat("a", 1<<20))),
		post("huge body 8 MiB", strings.Repeat("a", 8<<20)),
		post("body one byte over 64 KiB", jsonCreate(strings.Repeat("b", 64<<10))),
		post("20000 nested arrays", strings.Repeat("[", 20000)+strings.Repeat("]", 20000)),
		post("5000 nested objects", strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000)),
		post("nested value for type", `{"type":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`,"text":"x"}`),
		post("NUL byte in text", "{\"type\":\"bp\",\"text\":\"a\x00b\"}"),
		post("only NUL bytes", "\x00\x00\x00\x00"),
		post("NUL byte in a key", "{\"ty\x00pe\":\"bp\",\"text\":\"x\"}"),
		post("invalid UTF-8 in text", "{\"type\":\"bp\",\"text\":\"\xff\xfe\"}"),
		post("invalid UTF-8 in a key", "{\"\xffkey\":\"bp\",\"text\":\"x\"}"),
		post("overlong UTF-8 encoding", "{\"type\":\"bp\",\"text\":\"\xc0\x80\"}"),
		post("UTF-8 encoded surrogate", "{\"type\":\"bp\",\"text\":\"\xed\xa0\x80\"}"),
		post("byte order mark", "\xef\xbb\xbf"+okData),
		post("text as a number", `{"type":"bp","text":12345}`),
		post("text as a huge number", `{"type":"bp","text":1e309}`),
		post("type as a number", `{"type":7,"text":"x"}`),
		post("text as an array", `{"type":"bp","text":["a","b"]}`),
		post("text as an object", `{"type":"bp","text":{"a":1}}`),
		post("text as a boolean", `{"type":"bp","text":true}`),
		post("type and text null", `{"type":null,"text":null}`),
		post("duplicate key type", `{"type":"bp","type":"cmt","text":"x"}`),
		post("duplicate key text", `{"type":"bp","text":"first","text":"second"}`),
		post("duplicate key in other case", `{"type":"bp","TYPE":"cmt","text":"x"}`),
		post("body is a number", `123`),
		post("body is a string", `"bp"`),
		post("body is null", `null`),
		post("body is an array", `[{"type":"bp","text":"x"}]`),
		post("unknown field", `{"type":"bp","text":"x","admin":true}`),
		post("two JSON values", okData+okData),
		post("trailing garbage", okData+"}"),
		post("empty body", ""),
		post("whitespace body", " \n\t "),
		post("text only whitespace", `{"type":"bp","text":" \t\n "}`),
		post("text over the limit", jsonCreate(strings.Repeat("c", 5000))),
		post("type with a path", `{"type":"../../etc/passwd","text":"x"}`),
		post("type with CRLF", `{"type":"bp\r\nX-Injected: 1","text":"x"}`),
		post("Content-Type text/html", okData, "Content-Type: text/html"),
		post("Content-Type of 10 KB", okData, "Content-Type: application/"+strings.Repeat("x", 10<<10)),
		post("Content-Type unparsable", okData, "Content-Type: application/json;;;===;"),
		post("Content-Type multipart", okData, "Content-Type: multipart/form-data; boundary=zz"),
		post("Content-Type form", "type=bp&text=x", "Content-Type: application/x-www-form-urlencoded"),
		post("Idempotency-Key of 100 KB", okData, "Idempotency-Key: "+strings.Repeat("k", 100<<10)),
		post("Idempotency-Key with spaces", okData, "Idempotency-Key: a b c"),
		post("Idempotency-Key empty", okData, "Idempotency-Key: "),
		post("Idempotency-Key with high bytes", okData, "Idempotency-Key: \xff\xfe"),
		post("bare CR in a header value", okData, "Idempotency-Key: a\rX-Injected: 1"),
		post("header line without a colon", okData, "this is not a header"),
		post("headers over 1 MiB", okData, "X-Big: "+strings.Repeat("h", 2<<20)),
		{name: "chunked body with a bad chunk", raw: "POST /records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{name: "request line garbage", raw: "GARBAGE\r\n\r\n"},
		{name: "GET /records", method: http.MethodGet, target: "/records"},
		{name: "PUT /records", method: http.MethodPut, target: "/records", body: okData},
		{name: "DELETE /records", method: http.MethodDelete, target: "/records"},
		{name: "PATCH /records", method: http.MethodPatch, target: "/records", body: okData},
		{name: "OPTIONS /records", method: http.MethodOptions, target: "/records"},
		{name: "made-up method", method: "BREW", target: "/records"},
		{name: "path traversal", method: http.MethodPost, target: "/records/../..", body: okData},
		{name: "NUL in path", method: http.MethodPost, target: "/records/%00", body: okData},
		{name: "very long id", method: http.MethodPost, target: "/records/" + strings.Repeat("i", 64<<10), body: okData},
		{name: "bad escape in path", method: http.MethodPost, target: "/records%zz", body: okData},
		{name: "encoded slashes", method: http.MethodPost, target: "/records%2F..%2F..%2Fetc", body: okData},
		ce("plain JSON on POST /", okData, "Content-Type: application/json"),
		ce("event without id", okData, without("ce-id")...),
		ce("event without source", okData, without("ce-source")...),
		ce("event without type", okData, without("ce-type")...),
		ce("event specversion 2.0", okData, with("ce-specversion", "2.0")...),
		ce("event of another type", okData, with("ce-type", "dev.cqrs.records.query")...),
		ce("event data not JSON", "not json at all", binary...),
		ce("event data an array", `[1,2,3]`, binary...),
		ce("event data with unknown field", `{"type":"bp","text":"x","id":"forged"}`, binary...),
		ce("event data text/plain", okData, with("Content-Type", "text/plain")...),
		ce("event data of 1 MiB", jsonCreate(strings.Repeat("d", 1<<20)), binary...),
		ce("event with a bad time", okData, append(binary, "ce-time: yesterday")...),
		ce("structured event not JSON", "{{{", "Content-Type: application/cloudevents+json"),
		ce("structured event without id", `{"specversion":"1.0","source":"/h","type":"dev.cqrs.record.create","data":`+okData+`}`, "Content-Type: application/cloudevents+json"),
		ce("structured event with bad base64", `{"specversion":"1.0","id":"1","source":"/h","type":"dev.cqrs.record.create","data_base64":"!!!"}`, "Content-Type: application/cloudevents+json"),
		ce("batch of events", `[]`, "Content-Type: application/cloudevents-batch+json"),
		{name: "GET /", method: http.MethodGet, target: "/"},
	}
}

func readCorpus() []hostile {
	get := func(name, target string, header ...string) hostile {
		return hostile{name: name, method: http.MethodGet, target: target, header: header}
	}
	query := []string{"ce-specversion: 1.0", "ce-id: q1", "ce-source: /hostile", "ce-type: dev.cqrs.records.query", "Content-Type: application/json"}
	ce := func(name, body string, header ...string) hostile {
		return hostile{name: name, method: http.MethodPost, target: "/", body: body, header: header}
	}
	words := "a1 b2 c3 d4 e5 f6 g7 h8 i9 j10 k11 l12 m13 n14 o15 p16 q17"
	return []hostile{
		get("limit huge", "/records?limit=1000000"),
		get("limit negative", "/records?limit=-1"),
		get("limit zero", "/records?limit=0"),
		get("limit overflows", "/records?limit=99999999999999999999999"),
		get("limit in exponent form", "/records?limit=1e3"),
		get("limit in hex", "/records?limit=0x10"),
		get("limit with a space", "/records?limit=%205"),
		get("cursor negative", "/records?cursor=-5"),
		get("cursor zero", "/records?cursor=0"),
		get("cursor overflows", "/records?cursor=9223372036854775808"),
		get("cursor not a number", "/records?cursor=abc"),
		get("cursor NUL", "/records?cursor=%00"),
		get("minSeq negative", "/records?minSeq=-1"),
		get("minSeq overflows", "/records?minSeq=18446744073709551616"),
		get("X-Min-Seq garbage", "/records", "X-Min-Seq: abc"),
		get("X-Min-Seq negative", "/records", "X-Min-Seq: -1"),
		get("unknown type", "/records?type=nope"),
		get("type NUL", "/records?type=%00"),
		get("type with CRLF", "/records?type=bp%0d%0aX-Injected:%201"),
		get("q over 1 KB", "/records?q="+strings.Repeat("a", 2000)),
		get("q without words", "/records?q=!!!!"),
		get("q with 17 words", "/records?q="+strings.ReplaceAll(words, " ", "+")),
		get("q of invalid UTF-8", "/records?q=%ff%fe"),
		get("query of 1 MiB", "/records?q="+strings.Repeat("a", 1<<20)),
		get("limit repeated", "/records?limit=5&limit=500"),
		get("type repeated", "/records?type=bp&type=nope"),
		get("cursor repeated", "/records?cursor=5&cursor=-1"),
		get("bad escape in a value", "/records?limit=%zz"),
		get("bad escape in a key", "/records?%zz=1"),
		get("only percent signs", "/records?%%%%"),
		get("semicolon separators", "/records?limit=5;limit=500"),
		get("id lookup with bad minSeq", "/records/abc?minSeq=abc"),
		get("id lookup with repeated minSeq", "/records/abc?minSeq=1&minSeq=-1"),
		get("NUL id", "/records/%00"),
		get("id of 100 KB", "/records/"+strings.Repeat("i", 100<<10)),
		get("id with a slash", "/records/a/b"),
		get("id of invalid UTF-8", "/records/%ff%fe"),
		get("path traversal", "/records/../../etc/passwd"),
		get("bad escape in path", "/records/%zz"),
		get("unknown path", "/admin"),
		{name: "POST /records", method: http.MethodPost, target: "/records", body: `{"type":"bp","text":"x"}`},
		{name: "DELETE /records/x", method: http.MethodDelete, target: "/records/x"},
		{name: "PUT /records/x", method: http.MethodPut, target: "/records/x", body: "x"},
		{name: "made-up method", method: "BREW", target: "/records"},
		ce("query event with limit 1000", `{"limit":1000}`, query...),
		ce("query event with negative cursor", `{"cursor":"-1"}`, query...),
		ce("query event with limit as text", `{"limit":"10"}`, query...),
		ce("query event data not JSON", `limit=10`, query...),
		ce("query event with unknown field", `{"sort":"asc"}`, query...),
		ce("create event sent to read", `{"type":"bp","text":"x"}`, append(query[:3:3], "ce-type: dev.cqrs.record.create", "Content-Type: application/json")...),
		ce("query event without source", `{}`, query[0], query[1], query[3], query[4]),
		ce("query event of 1 MiB", `{"q":"`+strings.Repeat("q", 1<<20)+`"}`, query...),
	}
}

// TestHostileInputs sends every request of the corpus to the built binaries: each
// answers 4xx within the client's limit, never 5xx, and the process is alive and
// ready afterwards.
func TestHostileInputs(t *testing.T) {
	pair := testenv.Redis(t)
	w := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-write"), "REDIS_ADDR="+pair.Master.Addr())
	r := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-read"),
		"REDIS_ADDR="+pair.Replica.Addr(), "REDIS_MASTER_ADDR="+pair.Master.Addr())
	testenv.Ready(t, w, 10*time.Second)
	testenv.Ready(t, r, 10*time.Second)

	total := 0
	for _, fn := range []struct {
		name   string
		p      *launch.Proc
		corpus []hostile
	}{{"write", w, writeCorpus()}, {"read", r, readCorpus()}} {
		addr := "127.0.0.1:" + strconv.Itoa(fn.p.Port)
		statuses := map[int]int{}
		for _, h := range fn.corpus {
			total++
			resp, body, err := exchange(addr, h)
			if err != nil {
				t.Errorf("%s: %s: %v, want a 4xx answer within %s", fn.name, h.name, err, clientTimeout)
				continue
			}
			statuses[resp.StatusCode]++
			if resp.StatusCode/100 != 4 {
				t.Errorf("%s: %s: got %d %.200s, want 4xx", fn.name, h.name, resp.StatusCode, body)
			}
			if bytes.Contains(body, []byte("goroutine ")) || bytes.Contains(body, []byte(".go:")) {
				t.Errorf("%s: %s: answer shows internals: %.200s", fn.name, h.name, body)
			}
		}
		if code := fn.p.Wait(0); code != -1 {
			t.Fatalf("%s exited with %d under hostile input:\n%s", fn.name, code, fn.p.Output())
		}
		if s := ready(newClient(1), fn.p.URL()); s != http.StatusOK {
			t.Errorf("%s readiness after the corpus = %d, want 200", fn.name, s)
		}
		if out := fn.p.Output(); strings.Contains(out, "panic") {
			t.Errorf("%s logged a panic:\n%s", fn.name, out)
		}
		t.Logf("%s: %d hostile requests, statuses %v", fn.name, len(fn.corpus), statuses)
	}
	if total < 60 {
		t.Errorf("corpus holds %d requests, want at least 60", total)
	}
}
