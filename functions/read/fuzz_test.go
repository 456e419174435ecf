package read

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/cloudevent"
	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// parser returns a started function whose Redis is a closed loopback port: parsing
// needs the configured types that Start sets, and no Redis at all.
func parser(tb testing.TB) *Function {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.RedisAddr, cfg.RedisMasterAddr = "127.0.0.1:1", "127.0.0.1:1"
	f := NewWithConfig(cfg)
	if err := f.Start(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Stop(context.Background()) })
	return f
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return fail.Code(err)
}

// checkQuery fails unless q is within the limits a parsed query promises.
func checkQuery(t *testing.T, f *Function, q Query) {
	t.Helper()
	switch {
	case q.Limit < 1 || q.Limit > MaxLimit:
		t.Fatalf("limit %d outside 1..%d", q.Limit, MaxLimit)
	case q.Type != "" && !f.types[q.Type]:
		t.Fatalf("unknown type %q accepted", q.Type)
	case len(q.Words) > maxQueryWords:
		t.Fatalf("%d words accepted, at most %d", len(q.Words), maxQueryWords)
	case q.Before < 0 || q.MinSeq < 0:
		t.Fatalf("negative cursor %d or minSeq %d accepted", q.Before, q.MinSeq)
	}
	for _, w := range q.Words {
		if w == "" {
			t.Fatalf("empty word in %q", q.Words)
		}
	}
}

// FuzzParseQuery feeds raw query strings, as they arrive on GET /records, through
// the same parsing the handler does: the answer is a query within its limits or an
// invalid error, never a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "type=bp&q=hello+world&limit=100&cursor=42&minSeq=7",
		"limit=0", "limit=101", "limit=-1", "limit=1e3", "cursor=0", "cursor=-5",
		"cursor=9223372036854775807", "cursor=9223372036854775808", "minSeq=18446744073709551616",
		"limit=5&limit=6", "%zz", "a=%", "limit=5;cursor=3", "q=%ff%fe", "q=%00", "type=BP",
		"q=a1+b2+c3+d4+e5+f6+g7+h8+i9+j10+k11+l12+m13+n14+o15+p16+q17",
	} {
		f.Add(s, "")
	}
	f.Add("", "12")
	f.Add("", "-1")
	f.Add("minSeq=", "x")
	fn := parser(f)
	f.Fuzz(func(t *testing.T, raw, header string) {
		v, err := queryValues(raw)
		if err == nil {
			var q Query
			q, err = fn.ParseQuery(v, header)
			if err == nil {
				checkQuery(t, fn, q)
				if c := v.Get("cursor"); c != "" && q.Before < 1 {
					t.Fatalf("cursor %q accepted as %d", c, q.Before)
				}
				return
			}
		}
		if code := codeOf(err); code != fail.EINVALID {
			t.Fatalf("query %q: error %v with code %q, want %q", raw, err, code, fail.EINVALID)
		}
	})
}

// FuzzCursor checks that any accepted cursor means a positive seq and that the
// cursor this function hands out for that seq is accepted as the same seq.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "-1", "+7", "007", "9223372036854775807", "9223372036854775808", "1e3", " 1", "0x10", "٣"} {
		f.Add(s)
	}
	fn := parser(f)
	f.Fuzz(func(t *testing.T, cursor string) {
		q, err := fn.ParseQuery(url.Values{"cursor": {cursor}}, "")
		if err != nil {
			if codeOf(err) != fail.EINVALID {
				t.Fatalf("cursor %q: %v, want an invalid error", cursor, err)
			}
			return
		}
		if cursor == "" {
			// No cursor: the first page.
			if q.Before != 0 {
				t.Fatalf("no cursor read as %d, want 0", q.Before)
			}
			return
		}
		if q.Before < 1 {
			t.Fatalf("cursor %q accepted as %d", cursor, q.Before)
		}
		next := strconv.FormatInt(q.Before, 10)
		q2, err := fn.ParseQuery(url.Values{"cursor": {next}}, "")
		if err != nil || q2.Before != q.Before {
			t.Fatalf("cursor %q handed out for seq %d reads back as %d, %v", next, q.Before, q2.Before, err)
		}
	})
}

// FuzzQueryEvent checks that a query event is either received with a valid query
// or refused with a client error, never a panic or an internal error.
func FuzzQueryEvent(f *testing.F) {
	f.Add(false, "application/json", "1.0", "q-1", "/src", record.EventQuery, []byte(`{"type":"bp","q":"hello","limit":10,"cursor":"5","minSeq":3}`))
	f.Add(false, "application/json", "1.0", "q-1", "/src", record.EventQuery, []byte(`{"limit":1000}`))
	f.Add(false, "application/json", "1.0", "q-1", "/src", record.EventQuery, []byte(`{"limit":"10"}`))
	f.Add(false, "application/json", "1.0", "q-1", "/src", record.EventQuery, []byte(``))
	f.Add(false, "text/plain", "1.0", "q-1", "/src", record.EventQuery, []byte(`{}`))
	f.Add(false, "application/json", "9.9", "", "", record.EventCreate, []byte(`{"minSeq":-1}`))
	f.Add(true, "application/cloudevents+json", "", "", "", "",
		[]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"dev.cqrs.records.query","data":{"q":"x"}}`))
	f.Add(true, "application/cloudevents+json", "", "", "", "", []byte(`{"specversion":"1.0","id":1}`))
	fn := parser(f)
	f.Fuzz(func(t *testing.T, structured bool, contentType, specversion, id, source, typ string, body []byte) {
		req := testenv.EventRequest(structured, contentType, specversion, id, source, typ, body)
		ev, _, err := cloudevent.Receive(httptest.NewRecorder(), req, record.EventQuery)
		if err == nil {
			if ev.Type() != record.EventQuery || ev.Validate() != nil {
				t.Fatalf("received an event of type %q (validation: %v)", ev.Type(), ev.Validate())
			}
			var q Query
			q, err = fn.parseQueryData(ev.Data())
			if err == nil {
				checkQuery(t, fn, q)
			}
		}
		testenv.WantClientRefusal(t, err)
	})
}
