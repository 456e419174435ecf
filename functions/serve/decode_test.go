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
		{"null is no object", `null`, "body"},
		{"a string is no object", ` "x"`, "body"},
		{"not JSON", `{type:"bp"}`, "body"},
		{"cut off in a member", `{"type":"bp","text":"ab`, "body"},
		{"names match exactly", `{"Type":"bp"}`, "Type"},
		{"a fraction is no whole number", `{"limit":5.5}`, "limit"},
		{"out of range", `{"limit":99999999999999999999}`, "limit"},
		{"null leaves a field as it is", `{"type":null}`, ""},
		{"an escaped name is the name", `{"ty\u0070e":"bp"}`, ""},
		{"escaped name given twice", `{"type":"bp","ty\u0070e":"cmt"}`, "type"},
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

func TestObjectDecodeMessages(t *testing.T) {
	o := Object{What: "body", Field: "body", Example: `{"type":"bp"}`, Holds: "a sample has type, text and limit"}
	for body, want := range map[string]string{
		` `:                          `body is empty; send {"type":"bp"}`,
		`[1]`:                        `body must be a JSON object {"type":"bp"}, not an array`,
		`{"type":"bp","type":"cmt"}`: "type is given more than once; give it once",
		`{"admin":true}`:             `unknown field "admin"; a sample has type, text and limit`,
		`{"limit":"5"}`:              `limit must be a JSON whole number, not a string`,
		`{"text":1}`:                 "text must be a JSON string, not a number",
	} {
		var v sample
		err := o.Decode([]byte(body), &v)
		var e *fail.Error
		if !errors.As(err, &e) || e.Message != want {
			t.Errorf("Decode(%s) = %v, want the message %q", body, err, want)
		}
	}
}

// BenchmarkObjectDecode is the decoding of a typical create command.
func BenchmarkObjectDecode(b *testing.B) {
	o := Object{What: "body", Field: "body"}
	body := []byte(`{"type":"cmt","text":"lo kavi ne rusa te vi mido fa go hu jike la ma no pequi ro su tave wo xa yo zu an el in or us"}`)
	b.ReportAllocs()
	for b.Loop() {
		var v sample
		if err := o.Decode(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
