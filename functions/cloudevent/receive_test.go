package cloudevent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

const typ = "dev.example.do"

// binary is a binary-mode request: the four required headers, then the pairs of kv
// (added, so a name given twice is sent twice; an empty value removes the header).
func binary(body string, kv ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e-1", "Ce-Source": "/test", "Ce-Type": typ,
		"Content-Type": "application/json"} {
		r.Header.Set(k, v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			r.Header.Del(kv[i])
			continue
		}
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// replace is binary with the headers of kv set instead of added.
func replace(body string, kv ...string) *http.Request {
	r := binary(body)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			r.Header.Del(kv[i])
		} else {
			r.Header.Set(kv[i], kv[i+1])
		}
	}
	return r
}

// structured is a structured-mode request with body as the envelope.
func structured(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/cloudevents+json")
	return r
}

// env is a valid structured event with more members at its end (",name:value"...).
func env(more string) string {
	return `{"specversion":"1.0","id":"e-1","source":"/test","type":"` + typ + `","data":{"a":1}` + more + `}`
}

func TestReceiveRefuses(t *testing.T) {
	tests := []struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{
		// Neither mode, or the wrong one.
		{"plain JSON", replace(`{}`, "Ce-Specversion", "", "Ce-Id", "", "Ce-Source", "", "Ce-Type", ""), 400, "specversion"},
		{"ce headers without specversion", replace(`{}`, "Ce-Specversion", ""), 400, "specversion"},
		{"batch", func() *http.Request {
			r := structured(`[]`)
			r.Header.Set("Content-Type", "application/cloudevents-batch+json")
			return r
		}(), 400, "Content-Type"},
		{"too large", binary(`"` + strings.Repeat("a", serve.MaxBodyBytes) + `"`), 413, "body"},
		// Binary mode: every ce-* header once, valid UTF-8.
		{"Ce-Type twice", binary(`{}`, "Ce-Type", typ), 400, "type"},
		{"Ce-Specversion twice", binary(`{}`, "Ce-Specversion", "1.0"), 400, "specversion"},
		{"Ce-Id twice", binary(`{}`, "Ce-Id", "e-2"), 400, "id"},
		{"Ce-Source twice", binary(`{}`, "ce-source", "/other"), 400, "source"},
		{"an extension twice", binary(`{}`, "Ce-Trace", "a", "Ce-Trace", "b"), 400, "trace"},
		{"Content-Type twice", binary(`{}`, "Content-Type", "application/json"), 400, "datacontenttype"},
		{"id not UTF-8", replace(`{}`, "Ce-Id", "a\xffb"), 400, "id"},
		{"id an encoded surrogate", replace(`{}`, "Ce-Id", "\xed\xa0\x80"), 400, "id"},
		{"source not UTF-8", replace(`{}`, "Ce-Source", "/\xc3"), 400, "source"},
		{"type not UTF-8", replace(`{}`, "Ce-Type", typ+"\xff"), 400, "type"},
		{"specversion not UTF-8", replace(`{}`, "Ce-Specversion", "1.0\xff"), 400, "specversion"},
		{"extension name", binary(`{}`, "Ce-My-Ext", "x"), 400, "my-ext"},
		{"specversion 0.3", replace(`{}`, "Ce-Specversion", "0.3"), 400, "specversion"},
		{"no id", replace(`{}`, "Ce-Id", ""), 400, "id"},
		{"blank id", replace(`{}`, "Ce-Id", "  "), 400, "id"},
		{"no source", replace(`{}`, "Ce-Source", ""), 400, "source"},
		{"no type", replace(`{}`, "Ce-Type", ""), 400, "type"},
		{"bad time", binary(`{}`, "Ce-Time", "yesterday"), 400, "time"},
		{"id too long", replace(`{}`, "Ce-Id", strings.Repeat("i", MaxIDBytes+1)), 400, "id"},
		{"source too long", replace(`{}`, "Ce-Source", "/"+strings.Repeat("s", MaxIDBytes)), 400, "source"},
		{"another type", replace(`{}`, "Ce-Type", "dev.example.other"), 400, "type"},
		{"data not JSON", replace(`hi`, "Content-Type", "text/plain"), 415, "datacontenttype"},
		// Structured mode: one JSON object, every member once, exactly typed.
		{"malformed", structured(`{"specversion":"1.0",`), 400, ""},
		{"not an object", structured(`["x"]`), 400, ""},
		{"data twice", structured(env(`,"data":{"a":2}`)), 400, "data"},
		{"id twice", structured(env(`,"id":"e-2"`)), 400, "id"},
		{"an extension twice", structured(env(`,"trace":"a","trace":"b"`)), 400, "trace"},
		{"a name twice inside data", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"` + typ + `","data":{"a":1,"a":2}}`), 400, "data.a"},
		{"id a lone high surrogate", structured(`{"specversion":"1.0","id":"\ud800","source":"/t","type":"` + typ + `"}`), 400, "id"},
		{"id a lone low surrogate", structured(`{"specversion":"1.0","id":"\udbff","source":"/t","type":"` + typ + `"}`), 400, "id"},
		{"source a lone surrogate", structured(`{"specversion":"1.0","id":"e","source":"/\udc00","type":"` + typ + `"}`), 400, "source"},
		{"type a lone surrogate", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"\ud800"}`), 400, "type"},
		{"specversion a lone surrogate", structured(`{"specversion":"1.0\ud800","id":"e","source":"/t","type":"` + typ + `"}`), 400, "specversion"},
		{"id not UTF-8", structured("{\"specversion\":\"1.0\",\"id\":\"a\xffb\",\"source\":\"/t\",\"type\":\"" + typ + "\"}"), 400, "id"},
		{"id a number", structured(`{"specversion":"1.0","id":5,"source":"/t","type":"` + typ + `"}`), 400, "id"},
		{"subject a number", structured(env(`,"subject":5`)), 400, "subject"},
		{"no specversion", structured(`{"id":"e","source":"/t","type":"` + typ + `"}`), 400, "specversion"},
		{"specversion a number", structured(`{"specversion":1,"id":"e","source":"/t","type":"` + typ + `"}`), 400, "specversion"},
		{"no id", structured(`{"specversion":"1.0","source":"/t","type":"` + typ + `"}`), 400, "id"},
		{"data and data_base64", structured(env(`,"data_base64":"e30="`)), 400, "data_base64"},
		{"data_base64 a number", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"` + typ + `","data_base64":5}`), 400, "data_base64"},
		{"data_base64 not base64", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"` + typ + `","data_base64":"!!!"}`), 400, "data_base64"},
		{"an extension holding an object", structured(env(`,"trace":{"a":1}`)), 400, "trace"},
		{"an extension name with a dash", structured(env(`,"my-ext":1`)), 400, "my-ext"},
		{"an attribute name in upper case", structured(env(`,"ID":"e-2"`)), 400, "ID"},
		{"bad time", structured(env(`,"time":"yesterday"`)), 400, "time"},
		{"bad source", structured(`{"specversion":"1.0","id":"e","source":"::","type":"` + typ + `"}`), 400, "source"},
		{"data not JSON", structured(env(`,"datacontenttype":"text/xml"`)), 415, "datacontenttype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Receive(httptest.NewRecorder(), tt.req, typ)
			var e *fail.Error
			if !errors.As(err, &e) {
				t.Fatalf("Receive = %v, want a refusal naming %q", err, tt.field)
			}
			if got := serve.Status(e.Code); got != tt.status || e.Field != tt.field {
				t.Errorf("Receive = %d field %q (%v), want %d field %q", got, e.Field, err, tt.status, tt.field)
			}
			if strings.Contains(e.Message, "interface {}") || strings.Contains(e.Message, "time.Time") || strings.Contains(e.Message, "ReadString") {
				t.Errorf("message %q names Go types or parser internals", e.Message)
			}
		})
	}
}

func TestReceiveKeepsWhatWasSent(t *testing.T) {
	tests := []struct {
		name                   string
		req                    *http.Request
		wantStructured         bool
		wantID, wantSource     string
		wantData, wantDataType string
	}{
		{"binary", replace(`{"a":1}`, "Ce-Id", " spaced id ", "Ce-Source", "/a b"), false, " spaced id ", "/a b", `{"a":1}`, "application/json"},
		{"structured", structured(env(`,"trace":"t","seen":true,"n":1.5,"none":null`)), true, "e-1", "/test", `{"a":1}`, ""},
		{"structured escapes are the characters", structured(`{"specversion":"1.0","id":"caf\u00e9","source":"/t","type":"` + typ + `","data":{}}`), true, "café", "/t", `{}`, ""},
		{"a literal U+FFFD is a character", structured(`{"specversion":"1.0","id":"` + "\uFFFD" + `","source":"/t","type":"` + typ + `"}`), true, "\uFFFD", "/t", "", ""},
		{"data_base64", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"` + typ + `","datacontenttype":"application/json","data_base64":"eyJhIjoxfQ=="}`), true, "e", "/t", `{"a":1}`, "application/json"},
		{"null data is none", structured(`{"specversion":"1.0","id":"e","source":"/t","type":"` + typ + `","data":null}`), true, "e", "/t", "", ""},
		{"no Content-Type", replace(`{}`, "Content-Type", ""), false, "e-1", "/test", `{}`, ""},
		{"an extension header", binary(`{}`, "Ce-Traceparent", "00-1"), false, "e-1", "/test", `{}`, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, structured, err := Receive(httptest.NewRecorder(), tt.req, typ)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if structured != tt.wantStructured || ev.SentID != tt.wantID || ev.SentSource != tt.wantSource ||
				string(ev.Data()) != tt.wantData || ev.DataContentType() != tt.wantDataType || ev.Type() != typ {
				t.Errorf("got structured %v id %q source %q data %q datacontenttype %q type %q, want %v %q %q %q %q %q",
					structured, ev.SentID, ev.SentSource, ev.Data(), ev.DataContentType(), ev.Type(),
					tt.wantStructured, tt.wantID, tt.wantSource, tt.wantData, tt.wantDataType, typ)
			}
			if err := ev.Validate(); err != nil {
				t.Errorf("the event received does not validate: %v", err)
			}
		})
	}
}
