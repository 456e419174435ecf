package cloudevent

import (
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// attributes are an event's context attributes and data exactly as the sender wrote
// them: the ce-* headers and body of binary mode, or the members of a structured
// envelope. The SDK's own readers would take one of two repeated headers or members
// without a word, turn invalid UTF-8 and lone surrogate escapes into U+FFFD, and trim
// the id, so that distinct events could share one idempotency claim.
type attributes struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	DataSchema      string `json:"dataschema"`
	// Data is the data member as JSON; DataBase64 the data_base64 member.
	Data       jsontext.Value `json:"data"`
	DataBase64 *string        `json:"data_base64"`
	// Extensions are the other members: checked, not used.
	Extensions map[string]jsontext.Value `json:",unknown"`

	data []byte // the event's data, decoded
}

// envelope is a structured-mode event as the strict decoder names it in errors: the
// envelope's members by their names, its data's as data.<name>. Besides what any
// JSON input is refused for, a member given twice, anywhere, is refused.
var envelope = serve.Object{What: "event", Open: true,
	Example: `{"specversion":"1.0","id":"...","source":"...","type":"...","data":{...}}`}

// structuredAttributes reads a structured-mode event.
func structuredAttributes(body []byte) (attributes, error) {
	var a attributes
	if err := envelope.Decode(body, &a); err != nil {
		return a, err
	}
	for name, v := range a.Extensions {
		if !IsAttributeName(name) {
			return a, notAName(name)
		}
		if k := v.Kind(); k != '"' && k != '0' && k != 't' && k != 'f' && k != 'n' {
			return a, fail.Invalidf(name, "extension %s must be a string, a number or a boolean", name)
		}
	}
	hasData := len(a.Data) > 0 && string(a.Data) != "null"
	switch {
	case hasData && a.DataBase64 != nil:
		return a, fail.Invalid("data_base64", "an event carries data or data_base64, not both")
	case hasData:
		a.data = a.Data
	case a.DataBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*a.DataBase64)
		if err != nil {
			return a, fail.Invalidf("data_base64", "data_base64 is not base64: %v", err)
		}
		a.data = b
	}
	return a, nil
}

// binaryAttributes reads a binary-mode event: each ce-* header is an attribute, given
// once and valid UTF-8; Content-Type is the datacontenttype; the body is the data.
func binaryAttributes(h http.Header, body []byte) (attributes, error) {
	var a attributes
	for key, vals := range h {
		name, ok := strings.CutPrefix(strings.ToLower(key), "ce-")
		if !ok {
			continue
		}
		switch {
		case len(vals) > 1:
			return a, fail.Invalidf(name, "%s is given %d times; give it once", key, len(vals))
		case !utf8.ValidString(vals[0]):
			return a, fail.Invalidf(name, "%s is not valid UTF-8", key)
		case !IsAttributeName(name):
			return a, notAName(name)
		}
	}
	if len(h.Values("Content-Type")) > 1 {
		return a, fail.Invalid("datacontenttype", "Content-Type is given more than once; give it once")
	}
	return attributes{SpecVersion: h.Get("Ce-Specversion"), ID: h.Get("Ce-Id"), Source: h.Get("Ce-Source"),
		Type: h.Get("Ce-Type"), Subject: h.Get("Ce-Subject"), Time: h.Get("Ce-Time"), DataSchema: h.Get("Ce-Dataschema"),
		DataContentType: h.Get("Content-Type"), data: body}, nil
}

func notAName(name string) error {
	return fail.Invalidf(name, "%q is no CloudEvents attribute name (lower-case letters and digits)", name)
}

// IsAttributeName reports whether name is a CloudEvents attribute name: lower-case
// ASCII letters and digits. (Header names come lower-cased.)
func IsAttributeName(name string) bool {
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}
