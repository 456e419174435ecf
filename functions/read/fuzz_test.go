package read

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
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
	case q.Type != "" && !slices.Contains(f.cfg.RecordTypes, q.Type):
		t.Fatalf("unknown type %q accepted", q.Type)
	case len(q.Words) > maxQueryWords:
		t.Fatalf("%d words accepted, at most %d", len(q.Words), maxQueryWords)
	case q.Need.MinSeq < 0:
		t.Fatalf("negative minSeq %d accepted", q.Need.MinSeq)
	case q.Cursor != nil && len(q.Cursor) != f.parts:
		t.Fatalf("cursor %v of %d partitions accepted for %d", q.Cursor, len(q.Cursor), f.parts)
	}
	for _, c := range q.Cursor {
		if c.Seq < 1 {
			t.Fatalf("cursor %v accepted with a position below 1", q.Cursor)
		}
	}
	for _, w := range q.Words {
		if w == "" {
			t.Fatalf("empty word in %q", q.Words)
		}
	}
}

// FuzzParseQuery feeds raw query strings and an X-Min-Seq header, as they arrive on
// GET /records, through the same parsing the handler does: the answer is a query
// within its limits or an invalid error, never a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "type=bp&q=hello+world&limit=100&cursor=42&minSeq=7",
		"limit=0", "limit=101", "limit=-1", "limit=1e3", "cursor=0", "cursor=-5",
		"cursor=9223372036854775807", "cursor=9223372036854775808", "minSeq=18446744073709551616",
		"limit=5&limit=6", "%zz", "a=%", "limit=5;cursor=3", "q=%ff%fe", "q=%00", "type=BP",
		"q=a1+b2+c3+d4+e5+f6+g7+h8+i9+j10+k11+l12+m13+n14+o15+p16+q17",
		"token=0:abc.4", "token=0:abc.4&cursor=0:abd.2", "token=1:abc.4", "cursor=0:e.5", "token=x&token=y",
	} {
		f.Add(s, "")
	}
	f.Add("", "12")
	f.Add("", "-1")
	f.Add("minSeq=", "x")
	fn := parser(f)
	f.Fuzz(func(t *testing.T, raw, header string) {
		r := httptest.NewRequest(http.MethodGet, "/records", nil)
		r.URL.RawQuery = raw
		if header != "" {
			r.Header.Set("X-Min-Seq", header)
		}
		in, err := httpInput(r)
		if err == nil {
			var q Query
			q, err = fn.query(in)
			if err == nil {
				checkQuery(t, fn, q)
				return
			}
		}
		if code := codeOf(err); code != fail.EINVALID && code != fail.ERESET {
			t.Fatalf("query %q: error %v with code %q, want %q", raw, err, code, fail.EINVALID)
		}
	})
}

// FuzzCursor checks that any accepted cursor names a position from 1 in the store's
// one partition, and that the cursor this function hands out for that position is
// accepted as the same position.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "-1", "+7", "007", "9223372036854775807", "9223372036854775808", "1e3", " 1", "0x10", "٣",
		"0:abc.5", "0:.1", "0:ABC.5", "1:a.5", "0:a.5,1:b.6", "0:a.0"} {
		f.Add(s)
	}
	fn := parser(f)
	f.Fuzz(func(t *testing.T, cursor string) {
		q, err := fn.query(input{Cursor: cursor})
		if err != nil {
			if codeOf(err) != fail.EINVALID {
				t.Fatalf("cursor %q: %v, want an invalid error", cursor, err)
			}
			return
		}
		if cursor == "" {
			// No cursor: the first page.
			if q.Cursor != nil {
				t.Fatalf("no cursor read as %v, want none", q.Cursor)
			}
			return
		}
		checkQuery(t, fn, q)
		next := q.Cursor.String()
		q2, err := fn.query(input{Cursor: next})
		if err != nil || !slices.Equal(q2.Cursor, q.Cursor) {
			t.Fatalf("cursor %q handed out for %v reads back as %v, %v", next, q.Cursor, q2.Cursor, err)
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
