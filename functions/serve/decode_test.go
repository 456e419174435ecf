package serve

import (
	"errors"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

type sample struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Limit *int   `json:"limit"`
}

func TestObjectDecode(t *testing.T) {
	o := Object{What: "body", Field: "body", Example: `{"type":"bp"}`, Holds: "a sample has type, text and limit"}
	tests := []struct {
		name      string
		body      string
		wantField string // "" for no error
	}{
		{"valid", `{"type":"bp","text":"hi","limit":3}`, ""},
		{"surrogate pair is a character", `{"text":"\ud83d\ude00"}`, ""},
		{"escaped backslash before u is no escape", `{"text":"\\ud800"}`, ""},
		{"empty", `  `, "body"},
		{"not UTF-8", "{\"text\":\"\xff\"}", "text"},
		{"not an object", `["x"]`, "body"},
		{"malformed", `{"type":`, "body"},
		{"trailing value", `{"type":"bp"} {}`, "body"},
		{"unknown field", `{"type":"bp","admin":true}`, "admin"},
		{"repeated key", `{"type":"bp","type":"cmt"}`, "type"},
		{"repeated key in other case", `{"type":"bp","TYPE":"cmt"}`, "TYPE"},
		{"wrong type", `{"limit":"5"}`, "limit"},
		{"lone high surrogate", `{"text":"a\ud800b"}`, "text"},
		{"lone low surrogate", `{"text":"\udc00"}`, "text"},
		{"high surrogate at the end", `{"type":"bp","text":"\uD800"}`, "text"},
		{"high then no low", `{"text":"\ud800\u0041"}`, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v sample
			err := o.Decode([]byte(tt.body), &v)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want no error", tt.body, err)
				}
				return
			}
			var e *fail.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%s) = %v, want a 400 naming %s", tt.body, err, tt.wantField)
			}
			if got, want := e.Field, tt.wantField; got != want || e.Code != fail.EINVALID {
				t.Errorf("Decode(%s): field %q code %q (%s), want field %q, code invalid", tt.body, got, e.Code, e.Message, want)
			}
		})
	}
}

func TestObjectDecodePrefixesEventFields(t *testing.T) {
	o := Object{What: "event data", Field: "data", Prefix: "data.", Holds: "x"}
	var v sample
	err := o.Decode([]byte(`{"text":"\ud800"}`), &v)
	var e *fail.Error
	if !errors.As(err, &e) || e.Field != "data.text" {
		t.Fatalf("Decode = %v, want field data.text", err)
	}
}
