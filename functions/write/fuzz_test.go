package write

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// codeOf returns the code of err if it is a *fail.Error, "" otherwise.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return fail.Code(err)
}

// FuzzDecodeCreate checks that DecodeCreate never panics and either returns a
// create that survives a round trip through JSON or an invalid error.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"type":"bp","text":"hello world"}`,
		`{"type":"cmt","text":"caf\u00e9 \ud83d\ude00"}`,
		`{"TYPE":"bp","Text":"x"}`,
		`{"type":"bp","type":"cmt","text":"x"}`,
		`{"type":"bp","text":"x"} {}`,
		`{"type":["bp"],"text":1}`,
		`[[[[[[[[]]]]]]]]`,
		"{\"type\":\"bp\",\"text\":\"\xff\"}",
		"\xef\xbb\xbf{}",
		`null`, ``, ` `, `{}`, `{"text":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeCreate(body)
		if err != nil {
			if code := codeOf(err); code != fail.EINVALID {
				t.Fatalf("DecodeCreate(%q) error %v with code %q, want %q", body, err, code, fail.EINVALID)
			}
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("DecodeCreate(%q) accepted a body that is not valid UTF-8 JSON", body)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeCreate(again)
		if err != nil || c2 != c {
			t.Fatalf("round trip of %q: got %+v, %v; want %+v", body, c2, err, c)
		}
	})
}

// FuzzCreateEvent checks that a create event, in binary or structured mode, is
// either received with valid JSON create data or refused with a client error
// (400, 413 or 415): never a panic, never an internal error.
func FuzzCreateEvent(f *testing.F) {
	ok := []byte(`{"type":"bp","text":"hello"}`)
	f.Add(false, "application/json", "1.0", "id-1", "/src", record.EventCreate, ok)
	f.Add(false, "text/plain", "1.0", "id-1", "/src", record.EventCreate, ok)
	f.Add(false, "application/json", "2.0", "id-1", "/src", record.EventCreate, ok)
	f.Add(false, "application/json", "1.0", "", "/src", record.EventCreate, []byte(`not json`))
	f.Add(false, "", "0.3", "x", "%zz", record.EventQuery, []byte(`[1]`))
	f.Add(true, "application/cloudevents+json", "", "", "", "",
		[]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"dev.cqrs.record.create","data":{"type":"bp","text":"x"}}`))
	f.Add(true, "application/cloudevents+json", "", "", "", "",
		[]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"dev.cqrs.record.create","data_base64":"eyJ0eXBlIjoiYnAiLCJ0ZXh0IjoieCJ9"}`))
	f.Add(true, "application/cloudevents+json; charset=utf-8", "", "", "", "", []byte(`{"specversion":"1.0","data":"{"}`))
	f.Add(true, "application/cloudevents-batch+json", "", "", "", "", []byte(`[]`))
	f.Fuzz(func(t *testing.T, structured bool, contentType, specversion, id, source, typ string, body []byte) {
		req := testenv.EventRequest(structured, contentType, specversion, id, source, typ, body)
		ev, _, err := cloudevent.Receive(httptest.NewRecorder(), req, record.EventCreate)
		if err == nil {
			if ev.Type() != record.EventCreate || ev.Validate() != nil {
				t.Fatalf("received an event of type %q (validation: %v)", ev.Type(), ev.Validate())
			}
			var in record.Create
			err = createData.Decode(ev.Data(), &in)
		}
		testenv.WantClientRefusal(t, err)
	})
}
