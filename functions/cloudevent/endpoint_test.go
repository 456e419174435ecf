package cloudevent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// echo is an endpoint for typ whose handler answers with the event's data as the
// reply's, or with err when set.
func echo(err error) *Endpoint {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewEndpoint(typ, "plain requests go elsewhere", log, NewCounter(),
		func(_ context.Context, h http.Header, ev *Event) (*event.Event, string, error) {
			if err != nil {
				return nil, "", err
			}
			h.Set("X-Seen", ev.SentID)
			return NewReply("/echo", "dev.example.done", time.Unix(0, 0), ev.Data()), "done", nil
		})
}

func TestEndpointAnswers(t *testing.T) {
	tests := []struct {
		name       string
		ep         *Endpoint
		req        *http.Request
		wantStatus int
		wantHeader [2]string // a header of the answer and its value
		wantBody   string    // a part of the body
		wantLabel  [2]string // the type and outcome labels counted
	}{
		{"binary in, binary out", echo(nil), binary(`{"a":1}`), 200, [2]string{"Ce-Type", "dev.example.done"}, `{"a":1}`, [2]string{typ, "done"}},
		{"structured in, structured out", echo(nil), structured(env("")), 200, [2]string{"Content-Type", "application/cloudevents+json"},
			`"data":{"a":1}`, [2]string{typ, "done"}},
		{"handler headers go out", echo(nil), binary(`{}`), 200, [2]string{"X-Seen", "e-1"}, "", [2]string{typ, "done"}},
		{"GET", echo(nil), httptest.NewRequest(http.MethodGet, "/", nil), 405, [2]string{"Allow", "POST"}, "method_not_allowed",
			[2]string{"other", "method_not_allowed"}},
		{"not an event names where plain requests go", echo(nil), replace(`{}`, "Ce-Specversion", "", "Ce-Id", "", "Ce-Source", "", "Ce-Type", ""),
			400, [2]string{}, "plain requests go elsewhere", [2]string{"other", "invalid"}},
		{"another type is counted apart", echo(nil), replace(`{}`, "Ce-Type", "dev.example.other"), 400, [2]string{}, `"field":"type"`,
			[2]string{"other", "unknown_type"}},
		{"a refusal of the handler", echo(fail.Invalid("data.a", "bad a")), binary(`{}`), 400, [2]string{}, `"field":"data.a"`,
			[2]string{typ, "invalid"}},
		{"unavailable: retry", echo(fail.Unavailable("down", errors.New("dial"))), binary(`{}`), 503, [2]string{"Retry-After", "1"}, `"code":"unavailable"`,
			[2]string{typ, "unavailable"}},
		{"a bug hides its cause", echo(errors.New("secret")), binary(`{}`), 500, [2]string{}, `"error":"internal error"`,
			[2]string{typ, "internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.ep.ServeHTTP(w, tt.req)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("got %d %s, want %d with %s", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if h := tt.wantHeader; h[0] != "" && !strings.HasPrefix(w.Header().Get(h[0]), h[1]) {
				t.Errorf("%s = %q, want %q", h[0], w.Header().Get(h[0]), h[1])
			}
			if got := counted(t, tt.ep.total); got != tt.wantLabel {
				t.Errorf("cqrs_events_total counted %v, want %v", got, tt.wantLabel)
			}
		})
	}
}

// counted returns the type and outcome labels of the one event c has counted.
func counted(t *testing.T, c *prometheus.CounterVec) [2]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("counter holds %v (%v), want one event", mfs, err)
	}
	var labels [2]string
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		switch l.GetName() {
		case "type":
			labels[0] = l.GetValue()
		case "outcome":
			labels[1] = l.GetValue()
		}
	}
	return labels
}

func TestDataError(t *testing.T) {
	for _, tt := range []struct {
		in        error
		wantField string
		wantMsg   string
	}{
		{fail.Invalid("text", "text is required"), "data.text", "text is required"},
		{fail.Invalid("body", "body is empty; send {}"), "data", "event data is empty; send {}"},
		{fail.Invalid("", "bad"), "data", "bad"},
		{fail.Invalid("data.type", "unknown"), "data.type", "unknown"},
	} {
		var e *fail.Error
		if !errors.As(DataError(tt.in), &e) || e.Field != tt.wantField || e.Message != tt.wantMsg {
			t.Errorf("DataError(%v) = %+v, want field %q message %q", tt.in, e, tt.wantField, tt.wantMsg)
		}
	}
	down := fail.Unavailable("down", nil)
	if got := DataError(down); got != down {
		t.Errorf("DataError(unavailable) = %v, want it unchanged", got)
	}
}

func TestNewReplyCarriesJSON(t *testing.T) {
	out := NewReply("/src", "dev.example.done", time.Unix(0, 0), []byte(`{"n":1}`))
	if string(out.Data()) != `{"n":1}` || out.DataContentType() != event.ApplicationJSON || out.ID() == "" || out.Validate() != nil {
		t.Errorf("reply data %q type %q id %q (%v), want JSON data and a valid event", out.Data(), out.DataContentType(), out.ID(), out.Validate())
	}
}
